"""``/metrics`` after a scripted set of searches: every count checked against the script.

The gateway and its emulated backends run on loopback (``make_federation``); the emulators'
own request counters are the ground truth for what reached a backend. Counters are process
wide, so each test compares a scrape before and after its script.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series
from prometheus_client.parser import text_string_to_metric_families

from mqs import metrics

S2 = series(9)  # products 0..8, newest first; cloud cover (i % 7) * 10
L2A = "sentinel-2-l2a"
Sample = tuple[str, frozenset[tuple[str, str]]]


def scrape(fed: LiveFederation) -> dict[Sample, float]:
    """Every sample of the exposition by (name, labels)."""
    response = httpx.get(f"{fed.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[Sample, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def delta(
    before: dict[Sample, float], after: dict[Sample, float], name: str, **labels: str
) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def _federation(make: MakeFederation, **kwargs: Any) -> LiveFederation:
    """a (priority 10) holds products 0-5, b (5) holds 3-8: 3 products are in both; c is down."""
    return make(
        a=Archive(S2[:6], priority=10),
        b=Archive(S2[3:], priority=5),
        c=Archive([], priority=1, down=True),
        **kwargs,
    )


def _next(page: dict[str, Any]) -> str | None:
    return next((link["href"] for link in page["links"] if link["rel"] == "next"), None)


def _script(fed: LiveFederation) -> list[int]:
    """Seven search pages, one 404; returns the number of items of each page."""
    returned = []
    with httpx.Client(base_url=fed.url, timeout=30) as client:
        everything = {"collections": [L2A], "limit": 20}
        for _ in range(2):  # 9 items, 3 of them merged from two backends
            returned.append(len(client.post("/search", json=everything).json()["features"]))
        query = json.dumps({"eo:cloud_cover": {"lt": 50}})
        params = {"collections": L2A, "bbox": "14,49,17,51", "query": query, "limit": "4"}
        page = client.get("/search", params=params).json()  # 7 items over two pages
        returned.append(len(page["features"]))
        next_url = _next(page)
        assert next_url is not None
        returned.append(len(client.get(next_url).json()["features"]))
        area = {"type": "Polygon", "coordinates": [[[14, 49], [17, 49], [17, 51], [14, 49]]]}
        cql = {
            "op": "and",
            "args": [
                {"op": "=", "args": [{"property": "platform"}, "sentinel-2a"]},
                {"op": "=", "args": [{"property": "sat:relative_orbit"}, 79]},
                {"op": "=", "args": [{"property": "properties.foo:bar"}, "x"]},
            ],
        }
        filtered = {
            "collections": [L2A],
            "intersects": area,
            "filter": cql,
            "filter-lang": "cql2-json",
        }
        returned.append(len(client.post("/search", json=filtered).json()["features"]))
        items = client.get(f"/collections/{L2A}/items", params={"limit": 2}).json()
        returned.append(len(items["features"]))
        returned.append(len(client.get("/search", params={"limit": 20}).json()["features"]))
        assert client.get("/no/such/path").status_code == 404
    return returned


def test_counts_after_a_scripted_set_of_searches(make_federation: MakeFederation) -> None:
    # c's breaker opens after its 2nd failed search: the five later pages skip it.
    fed = _federation(make_federation, server={"breaker": {"failures": 2, "cooldown_s": 600}})
    asked = {bid: fed.emulators[bid].state.requests for bid in ("a", "b")}
    before = scrape(fed)
    assert _script(fed) == [9, 9, 4, 3, 0, 2, 9]
    after = scrape(fed)

    def d(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    # per endpoint, by route template and status
    assert d("mqs_http_requests_total", route="/search", method="POST", status="200") == 3
    assert d("mqs_http_requests_total", route="/search", method="GET", status="200") == 3
    route = "/collections/{collection_id}/items"
    assert d("mqs_http_requests_total", route=route, method="GET", status="200") == 1
    assert d("mqs_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert d("mqs_http_request_duration_seconds_count", route="/search", method="GET") == 3
    # the scrape before this one is counted too; the raw path is never a label
    assert d("mqs_http_requests_total", route="/metrics", method="GET", status="200") == 1
    assert not any("/no/such/path" in dict(labels).values() for _, labels in after)
    # usage: new searches per collection (a next page is not a new search) and per attribute
    assert d("mqs_searches_total", collection=L2A) == 5
    assert d("mqs_searches_total", collection="all") == 1
    assert d("mqs_search_pages_total") == 7
    for attribute in ("bbox", "cloud_cover", "footprint", "platform", "orbit", "other"):
        assert d("mqs_search_attributes_total", attribute=attribute) == 1, attribute
    assert d("mqs_search_attributes_total", attribute="datetime") == 0
    # items and de-duplication: 9 + 9 + 7 + 0 + 2 + 9 items; b's copies of 3, 3, 2, 0, 0, 3
    assert d("mqs_search_items_total") == 36
    assert d("mqs_duplicates_removed_total") == 11
    assert d("mqs_backend_duplicates_removed_total", backend="b") == 11
    assert d("mqs_backend_duplicates_removed_total", backend="a") == 0
    assert d("mqs_backend_items_total", backend="a") == 6 + 6 + 5 + 0 + 2 + 6
    assert d("mqs_backend_items_total", backend="b") == 6 + 6 + 4 + 0 + 0 + 6
    # per backend: requests (what reached the emulator), errors by kind, circuit state
    for bid in ("a", "b"):
        reached = fed.emulators[bid].state.requests - asked[bid]
        assert d("mqs_backend_requests_total", backend=bid, status="ok") == reached
        assert d("mqs_backend_duration_seconds_count", backend=bid) == 7
        assert d("mqs_backend_errors_total", backend=bid, kind="unavailable") == 0
    assert d("mqs_backend_errors_total", backend="c", kind="unavailable") == 2
    assert d("mqs_backend_errors_total", backend="c", kind="skipped") == 5
    assert after[("mqs_backend_circuit_state", frozenset({("backend", "c")}))] == 2
    assert after[("mqs_backend_circuit_state", frozenset({("backend", "a")}))] == 0


def test_cache_hits_and_misses(make_federation: MakeFederation) -> None:
    fed = make_federation(
        a=Archive(S2[:6], priority=10),
        b=Archive(S2[3:], priority=5),
        cache={"search_ttl_s": 60, "collections_ttl_s": 60},
    )
    body = {"collections": [L2A], "limit": 20}
    before = scrape(fed)
    first = httpx.post(f"{fed.url}/search", json=body).json()
    asked = {bid: fed.emulators[bid].state.requests for bid in ("a", "b")}
    middle = scrape(fed)
    again = httpx.post(f"{fed.url}/search", json=body).json()
    after = scrape(fed)
    assert [f["id"] for f in again["features"]] == [f["id"] for f in first["features"]]
    assert {bid: fed.emulators[bid].state.requests for bid in ("a", "b")} == asked
    layer = "backend-search"
    assert delta(before, middle, "mqs_cache_requests_total", layer=layer, result="miss") == 2
    assert delta(before, middle, "mqs_cache_requests_total", layer=layer, result="hit") == 0
    # answered without the backends: from the cache, or from the identical request that has
    # just finished in this process (its answer is kept with the flight for a second)
    served = sum(
        delta(middle, after, "mqs_cache_requests_total", layer=layer, result=result)
        for result in ("hit", "coalesced")
    )
    assert served == 2
    assert delta(middle, after, "mqs_cache_requests_total", layer=layer, result="miss") == 0
    for _ in range(2):
        assert httpx.get(f"{fed.url}/collections/{L2A}").status_code == 200
    listing = scrape(fed)
    assert delta(after, listing, "mqs_cache_requests_total", layer="collections", result="miss")
    assert delta(after, listing, "mqs_cache_requests_total", layer="collections", result="hit")


def test_downloads_per_collection_and_backend(make_federation: MakeFederation) -> None:
    fed = _federation(make_federation)
    before = scrape(fed)
    metrics.record_download(L2A, "a", 1000)
    metrics.record_download(L2A, "a", 24)
    metrics.record_download("user-typed-collection", "somewhere", 5)
    after = scrape(fed)
    assert delta(before, after, "mqs_downloads_total", collection=L2A, backend="a") == 2
    assert delta(before, after, "mqs_download_bytes_total", collection=L2A, backend="a") == 1024
    # values outside the configuration never become label values
    assert delta(before, after, "mqs_downloads_total", collection="other", backend="other") == 1
    assert not any("user-typed-collection" in dict(labels).values() for _, labels in after)


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        pytest.param({"op": "<", "args": [{"property": "eo:cloud_cover"}, 5]}, {"cloud_cover"}),
        pytest.param(
            {"op": "a_contains", "args": [{"property": "sar:polarizations"}, ["VV"]]},
            {"polarisation"},
            id="polarisation",
        ),
        pytest.param(
            {"op": ">", "args": [{"property": "created"}, {"timestamp": "2021-01-01T00:00:00Z"}]},
            {"ingestion_date"},
            id="ingestion-date",
        ),
        pytest.param(
            {"op": "=", "args": [{"property": "free text 'x' or 1=1"}, 1]}, {"other"}, id="other"
        ),
    ],
)
def test_query_attributes_are_a_fixed_vocabulary(
    filter_: dict[str, Any], expected: set[str]
) -> None:
    from mqs.query import SearchQuery

    assert metrics.query_attributes(SearchQuery(filter=filter_)) == expected
