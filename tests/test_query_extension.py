"""The Query extension (``query``): one internal CQL2 filter, evaluated where it is exact."""

from __future__ import annotations

import httpx
import orjson
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series

ITEMS = series(12, tiles=("33UXQ", "33UWQ"))  # cloud cover i % 7 * 10


@pytest.fixture
def federation(make_federation: MakeFederation) -> LiveFederation:
    return make_federation(
        eodc=Archive(ITEMS[::2], emulator={"max_page_size": 3}),
        cesnet=Archive(ITEMS[1::2] + ITEMS[:4], emulator={"max_page_size": 2}),
    )


def _param(value: object) -> str:
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return ",".join(value) if isinstance(value, list) else str(value)


def _all_ids(url: str, method: str, body: dict[str, object]) -> list[str]:
    ids: list[str] = []
    with httpx.Client(timeout=10) as client:
        if method == "POST":
            page = client.post(f"{url}/search", json=body).json()
        else:
            params = {k: _param(v) for k, v in body.items()}
            page = client.get(f"{url}/search", params=params).json()
        while True:
            ids += [f["id"] for f in page["features"]]
            link = next((x for x in page["links"] if x["rel"] == "next"), None)
            if link is None:
                return ids
            if link.get("method") == "POST":
                page = client.post(link["href"], json=link["body"]).json()
            else:
                page = client.get(link["href"]).json()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ({"eo:cloud_cover": {"lte": 20}}, lambda c: c <= 20),
        ({"eo:cloud_cover": {"gt": 10, "lt": 50}}, lambda c: 10 < c < 50),
        ({"eo:cloud_cover": {"in": [0, 60]}}, lambda c: c in (0, 60)),
        ({"eo:cloud_cover": {"neq": 30}}, lambda c: c != 30),
    ],
)
def test_query_filters_every_page_exactly(
    federation: LiveFederation, method: str, query: dict[str, object], keep: object
) -> None:
    expected = sorted(
        (i for i in ITEMS if keep(i["properties"]["eo:cloud_cover"])),  # type: ignore[operator]
        key=lambda i: (i["properties"]["datetime"], i["id"]),
        reverse=True,
    )
    body = {"collections": ["sentinel-2-l2a"], "limit": 3, "query": query}
    ids = _all_ids(federation.url, method, body)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(i["id"] for i in expected)


def test_startswith_is_a_like_with_wildcards_escaped(federation: LiveFederation) -> None:
    body = {"limit": 100, "query": {"platform": {"startsWith": "sentinel-2"}}}
    assert len(_all_ids(federation.url, "POST", body)) == len(ITEMS)
    body = {"limit": 100, "query": {"platform": {"startsWith": "sentinel_2"}}}
    assert _all_ids(federation.url, "POST", body) == []  # "_" is literal, not a wildcard


@pytest.mark.parametrize(
    "query",
    [
        {"eo:cloud_cover": {"between": [1, 2]}},
        {"eo:cloud_cover": {"lt": [1]}},
        {"eo:cloud_cover": "low"},
        ["eo:cloud_cover"],
    ],
)
def test_bad_query_is_a_400(federation: LiveFederation, query: object) -> None:
    response = httpx.post(f"{federation.url}/search", json={"query": query})
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidParameterValue"
    assert "query" in response.json()["description"]
    response = httpx.get(f"{federation.url}/search", params={"query": "{not json"})
    assert response.status_code == 400


def test_query_is_declared_in_conformance(federation: LiveFederation) -> None:
    classes = httpx.get(f"{federation.url}/conformance").json()["conformsTo"]
    assert "https://api.stacspec.org/v1.0.0/item-search#query" in classes


def test_pages_filtered_down_to_nothing_do_not_end_the_search(
    make_federation: MakeFederation,
) -> None:
    # The 9 newest products are cloudy: the first backend pages hold no match at all.
    items = series(12)
    for item in items[:9]:
        item["properties"]["eo:cloud_cover"] = 90.0
    fed = make_federation(eodc=Archive(items, emulator={"max_page_size": 2}))
    body = {"limit": 2, "query": {"eo:cloud_cover": {"lt": 50}}}
    assert _all_ids(fed.url, "POST", body) == [i["id"] for i in items[9:]]


def test_array_properties_match_by_element(federation: LiveFederation) -> None:
    every = len({i["id"] for i in ITEMS})
    assert (
        len(_all_ids(federation.url, "POST", {"query": {"instruments": {"in": ["msi"]}}})) == every
    )
    assert len(_all_ids(federation.url, "GET", {"query": {"instruments": {"eq": "msi"}}})) == every
    assert _all_ids(federation.url, "POST", {"query": {"instruments": {"neq": "msi"}}}) == []


def test_a_single_collection_as_a_string_is_accepted(federation: LiveFederation) -> None:
    body = {"collections": "sentinel-2-l2a", "ids": ITEMS[0]["id"]}
    response = httpx.post(f"{federation.url}/search", json=body)
    assert response.status_code == 200
    assert [f["id"] for f in response.json()["features"]] == [ITEMS[0]["id"]]


def test_a_long_scan_for_a_rare_match_pages_on_instead_of_failing(
    make_federation: MakeFederation,
) -> None:
    # 120 cloudy products before the first clear one, one product per backend page: more
    # backend pages than one request may read. Pages end early (even empty) and go on.
    items = series(122, step_h=6)
    for item in items[:120]:
        item["properties"]["eo:cloud_cover"] = 90.0
    fed = make_federation(eodc=Archive(items, emulator={"max_page_size": 1}))
    body = {"limit": 1, "query": {"eo:cloud_cover": {"lt": 50}}}
    first = httpx.post(f"{fed.url}/search", json=body).json()
    assert first["features"] == [] and "federation:missing" not in first
    assert any(link["rel"] == "next" for link in first["links"])
    assert _all_ids(fed.url, "POST", body) == [i["id"] for i in items[120:]]
