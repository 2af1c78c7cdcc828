"""STAC backends with the Filter and Sort extensions, through the gateway's HTTP API.

Three emulated STAC archives of the demo catalogue (``mqs.demodata``) with overlapping holdings;
one of them (Earth Search style) names its items differently and answers GET only. Every
expected answer is a brute force over the products: ``cql2`` for the filter, one entry per
product, the sort keys with missing values last, then the product id.
"""

from __future__ import annotations

from typing import Any

import cql2
import httpx
import orjson
import pytest
from conftest import Archive, LiveFederation, MakeFederation

from mqs.demodata import generate_catalogue, generate_products
from mqs.identity import product_name

CATALOGUE = generate_catalogue()
PRODUCTS = {p["id"]: p for p in generate_products()}
CQL2 = {"filter_extension": True}
ES_OPTIONS = {"product_id_property": "s2:product_uri"}


def _held(*archives: str) -> list[dict[str, Any]]:
    """The products the named archives hold (Earth Search items carry the name in a property)."""
    names = {
        product_name(item["properties"].get("s2:product_uri") or item["id"])
        for archive in archives
        for item in CATALOGUE[archive]
    }
    return [PRODUCTS[name] for name in sorted(names)]


def _archives(pushdown: bool = True, **options: Any) -> dict[str, Archive]:
    es = {"sentinel-2-l2a": "sentinel-2-l2a"}
    return {
        "eodc": Archive(CATALOGUE["eodc"], priority=10, options=options, filter_pushdown=pushdown),
        "cesnet": Archive(
            CATALOGUE["cesnet"], priority=5, options=options, filter_pushdown=pushdown
        ),
        "element84": Archive(
            CATALOGUE["element84"],
            priority=1,
            collections=es,
            options={**ES_OPTIONS, **options},
            emulator={"post_search": False},
            filter_pushdown=pushdown,
        ),
    }


def brute_force(
    products: list[dict[str, Any]], expr: cql2.Expr | None, sortby: str = "-datetime"
) -> list[str]:
    """Matching products in the order ``sortby`` asks for: missing values last, then id."""
    found = [p for p in products if expr is None or _matches(expr, p)]
    found.sort(key=lambda p: p["id"])
    for token in reversed(sortby.split(",")):
        name, desc = token.lstrip("+-"), token.startswith("-")
        found.sort(key=lambda p, n=name, d=desc: _present_first(p, n, d), reverse=desc)
    return [p["id"] for p in found]


def _matches(expr: cql2.Expr, item: dict[str, Any]) -> bool:
    try:
        return bool(expr.matches(item))
    except Exception:  # unknown (a property the item lacks): no match
        return False


def _present_first(item: dict[str, Any], name: str, desc: bool) -> tuple[bool, Any]:
    # the demo catalogue writes every instant as ...T..:..:..sssZ: text order is time order
    value = item["id"] if name == "id" else item["properties"].get(name)
    missing = value is None
    return (not missing if desc else missing, "" if missing else value)


def search_all(url: str, method: str, params: dict[str, Any]) -> tuple[list[str], set[str]]:
    """(ids of every page, backends reported missing on any page)."""
    found: list[str] = []
    missing: set[str] = set()
    with httpx.Client(timeout=60) as client:
        if method == "GET":
            response = client.get(f"{url}/search", params=params)
        else:
            response = client.post(f"{url}/search", json=params)
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            found += [f["id"] for f in page["features"]]
            missing |= set(page.get("federation:missing", []))
            link = next((x for x in page["links"] if x["rel"] == "next"), None)
            if link is None:
                return found, missing
            if link.get("method") == "POST":
                response = client.post(link["href"], json=link["body"])
            else:
                response = client.get(link["href"])


def both_ways(url: str, text: str, limit: int = 90) -> tuple[list[str], list[str]]:
    """The filter as CQL2 text on GET and as CQL2 JSON on POST, each paged to the end."""
    via_get, missing_get = search_all(
        url, "GET", {"filter": text, "filter-lang": "cql2-text", "limit": limit}
    )
    body = {"filter": cql2.parse_text(text).to_json(), "limit": limit - 7}
    via_post, missing_post = search_all(url, "POST", body)
    assert not missing_get and not missing_post
    return via_get, via_post


FILTERS = [
    pytest.param("eo:cloud_cover < 12", id="comparison"),
    pytest.param("eo:cloud_cover BETWEEN 20 AND 60 AND platform = 'sentinel-2b'", id="between-and"),
    pytest.param("sat:relative_orbit IN (22, 146) AND sat:orbit_state = 'ascending'", id="in"),
    pytest.param("NOT (eo:cloud_cover > 15)", id="not-unknown-for-sar"),
    pytest.param("eo:cloud_cover < 3 OR sar:instrument_mode = 'IW'", id="or-missing-props"),
    pytest.param("\"grid:code\" LIKE 'MGRS-33UX%' AND eo:cloud_cover >= 90", id="like"),
    pytest.param("A_CONTAINS(sar:polarizations, ('VH')) AND platform = 'sentinel-1b'", id="array"),
    pytest.param(
        "created >= TIMESTAMP('2021-10-15T00:00:00Z')"
        " AND created < TIMESTAMP('2021-10-18T00:00:00Z')",
        id="timestamps",
    ),
    pytest.param("id LIKE 'S2B_MSIL2A%' AND eo:cloud_cover < 40", id="id-local-for-es"),
    pytest.param(
        "collection = 'sentinel-2-l2a' AND \"grid:code\" = 'MGRS-33UWQ'", id="lifted-collection"
    ),
    pytest.param(
        "datetime >= TIMESTAMP('2021-11-20T00:00:00Z') AND \"processing:level\" = 'L2A'",
        id="lifted-time",
    ),
    pytest.param(
        "S_INTERSECTS(geometry, BBOX(16.2, 49.0, 17.0, 50.0)) AND eo:cloud_cover < 50",
        id="lifted-area",
    ),
    pytest.param("sat:absolute_orbit IS NULL AND gsd = 10 AND eo:cloud_cover > 99", id="is-null"),
    pytest.param("CASEI(platform) = CASEI('SENTINEL-1A') AND sat:relative_orbit = 51", id="casei"),
    pytest.param("eo:cloud_cover > 100", id="empty"),
]


@pytest.mark.parametrize("text", FILTERS)
def test_pushdown_on_and_off_give_the_brute_force_answer(
    make_federation: MakeFederation, text: str
) -> None:
    expected = brute_force(_held("eodc", "cesnet", "element84"), cql2.parse_text(text))
    pushed = make_federation(**_archives(pushdown=True, **CQL2))
    local = make_federation(**_archives(pushdown=False, **CQL2))
    for fed in (pushed, local):
        via_get, via_post = both_ways(fed.url, text)
        assert via_get == via_post == expected
    assert expected or text == "eo:cloud_cover > 100"


def test_id_clauses_stay_with_the_gateway_when_the_backend_names_items_otherwise(
    make_federation: MakeFederation,
) -> None:
    """Earth Search's ids are not product names: ``id`` clauses are not sent to it."""
    text = "id LIKE 'S2B_MSIL2A%' AND eo:cloud_cover < 40"
    expected = brute_force(_held("element84"), cql2.parse_text(text))
    fed = make_federation(element84=_archives(**CQL2)["element84"])
    assert expected and both_ways(fed.url, text) == (expected, expected)
    assert set(fed.emulators["element84"].state.filters) == {"eo:cloud_cover < 40"}


def test_most_filters_of_the_table_match_something() -> None:
    products = _held("eodc", "cesnet", "element84")
    sizes = [len(brute_force(products, cql2.parse_text(p.values[0]))) for p in FILTERS]
    assert sum(1 for n in sizes if n) >= len(FILTERS) - 1
    assert all(n < len(products) for n in sizes)  # none is a no-op either


def _counts(fed: LiveFederation, text: str) -> tuple[int | None, int]:
    """(numberMatched of the first page, requests the backend answered for the whole search)."""
    before = fed.emulators["eodc"].state.requests
    first = httpx.get(f"{fed.url}/search", params={"filter": text, "limit": 10}, timeout=30)
    search_all(fed.url, "GET", {"filter": text, "limit": 10})
    return first.json().get("numberMatched"), fed.emulators["eodc"].state.requests - before


def test_pushed_clauses_are_evaluated_by_the_backend(make_federation: MakeFederation) -> None:
    """The backend's own count comes back exact, and the scan needs fewer backend requests."""
    text = "eo:cloud_cover < 30 AND platform = 'sentinel-2a'"
    expected = brute_force(_held("eodc"), cql2.parse_text(text))
    pushed = make_federation(eodc=Archive(CATALOGUE["eodc"], options=CQL2))
    local = make_federation(eodc=Archive(CATALOGUE["eodc"], options=CQL2, filter_pushdown=False))
    matched_pushed, requests_pushed = _counts(pushed, text)
    matched_local, requests_local = _counts(local, text)
    assert matched_pushed == len(expected) > 10  # counted by the backend after filtering
    assert matched_local is None  # the gateway filtered: no exact count
    assert requests_pushed < requests_local
    assert pushed.emulators["eodc"].state.filters
    assert not local.emulators["eodc"].state.filters


def test_only_exact_clauses_are_pushed(make_federation: MakeFederation) -> None:
    """CASEI stays with the gateway (so no exact count); the other clause reaches the backend."""
    text = "eo:cloud_cover < 30 AND CASEI(platform) = 'SENTINEL-2A'"
    expected = brute_force(_held("eodc"), cql2.parse_text(text))
    fed = make_federation(eodc=Archive(CATALOGUE["eodc"], options=CQL2))
    assert search_all(fed.url, "GET", {"filter": text, "limit": 25})[0] == expected
    assert _counts(fed, text)[0] is None
    assert set(fed.emulators["eodc"].state.filters) == {"eo:cloud_cover < 30"}


def test_backend_without_filter_extension_is_filtered_by_the_gateway(
    make_federation: MakeFederation,
) -> None:
    """A server that ignores ``filter`` (no extension) still gives the exact answer."""
    archives = {
        "eodc": Archive(CATALOGUE["eodc"], priority=10, emulator={"filter": False}),
        "cesnet": Archive(CATALOGUE["cesnet"], priority=5, options=CQL2),
    }
    fed = make_federation(**archives)
    ignored = httpx.get(
        f"{fed.backend_urls['eodc']}/search", params={"filter": "eo:cloud_cover < 5"}, timeout=30
    ).json()
    assert ignored["numberMatched"] == len(CATALOGUE["eodc"])  # the backend ignores it
    landing = httpx.get(f"{fed.backend_urls['eodc']}/", timeout=30).json()
    assert not any("filter" in c for c in landing["conformsTo"])
    for text in ("eo:cloud_cover < 12", "NOT (eo:cloud_cover > 15)", "id LIKE 'S1A%'"):
        expected = brute_force(_held("eodc", "cesnet"), cql2.parse_text(text))
        assert expected
        assert both_ways(fed.url, text) == (expected, expected)


SORTS = ["-eo:cloud_cover,+datetime", "+eo:cloud_cover,-created", "id", "-created", "+datetime"]
SORTS += ["+sat:relative_orbit,-datetime", "-platform,-eo:cloud_cover,+id"]


@pytest.mark.parametrize("sortby", SORTS)
def test_multi_key_sortby_over_two_archives_pages_in_brute_force_order(
    make_federation: MakeFederation, sortby: str
) -> None:
    fed = make_federation(
        eodc=Archive(CATALOGUE["eodc"], priority=10, emulator={"max_page_size": 30}),
        cesnet=Archive(CATALOGUE["cesnet"], priority=5, emulator={"max_page_size": 17}),
    )
    expected = brute_force(_held("eodc", "cesnet"), None, sortby)
    via_get, missing = search_all(fed.url, "GET", {"sortby": sortby, "limit": 100})
    assert not missing and via_get == expected
    keys = [
        {"field": t.lstrip("+-"), "direction": "desc" if t[0] == "-" else "asc"}
        for t in sortby.split(",")
    ]
    via_post, missing = search_all(fed.url, "POST", {"sortby": keys, "limit": 77})
    assert not missing and via_post == expected


@pytest.mark.parametrize("sortby", ["id", "-id", "-eo:cloud_cover,id"])
def test_sort_by_id_uses_the_product_name_property(
    make_federation: MakeFederation, sortby: str
) -> None:
    """Earth Search ids are not product names: it is sent ``properties.s2:product_uri``."""
    es = {"sentinel-2-l2a": "sentinel-2-l2a"}
    fed = make_federation(
        eodc=Archive(CATALOGUE["eodc"], priority=10, collections=es),
        element84=Archive(CATALOGUE["element84"], priority=1, collections=es, options=ES_OPTIONS),
    )
    l2a = [p for p in _held("eodc", "element84") if p["collection"] == "sentinel-2-l2a"]
    filter_ = {"filter": "eo:cloud_cover < 70", "sortby": sortby, "limit": 25}
    got, missing = search_all(fed.url, "GET", filter_)
    assert not missing
    assert got == brute_force(l2a, cql2.parse_text("eo:cloud_cover < 70"), sortby)


@pytest.mark.parametrize("sortby", ["+datetime", "-eo:cloud_cover,+datetime"])
def test_backend_that_ignores_sortby_is_reported_not_merged(
    make_federation: MakeFederation, sortby: str
) -> None:
    """An archive claiming the Sort extension that answers newest first fails loudly.

    The gateway checks each stream's order as it buffers it (``_buffer``): the first page out
    of order ends that backend's stream, it is listed in ``federation:missing`` and the answer
    is exactly the other archive's, in order.
    """
    fed = make_federation(
        eodc=Archive(CATALOGUE["eodc"], priority=10, emulator={"sort": False}),
        cesnet=Archive(CATALOGUE["cesnet"], priority=5),
    )
    got, missing = search_all(fed.url, "GET", {"sortby": sortby, "limit": 50})
    assert missing == {"eodc"}
    assert got == brute_force(_held("cesnet"), None, sortby)


def test_backend_without_sort_extension_cannot_be_asked_for_another_order(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(
        eodc=Archive(CATALOGUE["eodc"], options={"sort": False}, emulator={"sort": False})
    )
    refused = httpx.get(f"{fed.url}/search", params={"sortby": "-eo:cloud_cover"}, timeout=30)
    assert refused.status_code == 400 and "eodc" in refused.json()["description"]
    got, missing = search_all(fed.url, "GET", {"sortby": "-datetime", "limit": 100})
    assert not missing and got == brute_force(_held("eodc"), None)


def test_filter_as_json_text_on_get(make_federation: MakeFederation) -> None:
    """``filter-lang=cql2-json`` on GET reaches the same answer as CQL2 text."""
    fed = make_federation(**_archives(**CQL2))
    text = "eo:cloud_cover BETWEEN 20 AND 60 AND platform = 'sentinel-2b'"
    as_json = orjson.dumps(cql2.parse_text(text).to_json()).decode()
    params = {"filter": as_json, "filter-lang": "cql2-json", "limit": 31}
    got, missing = search_all(fed.url, "GET", params)
    assert not missing
    assert got == brute_force(_held("eodc", "cesnet", "element84"), cql2.parse_text(text))


# A 200-byte invalid filter on which cql2's schema validator takes tens of GiB of memory (found
# by the differential test of tests/test_cql_check.py): neither the gateway nor the emulated
# STAC backend may hand it to that validator.
SCHEMA_BOMB = {
    "op": "not",
    "args": [
        {
            "op": "and",
            "args": [
                {"op": "s_disjoint", "args": [None, None]},
                {
                    "op": "not",
                    "args": [
                        {"op": "between", "args": ["x", ["S2%", ""], None]},
                        {"op": "between", "args": ["x", ["S2%", ""], None]},
                    ],
                },
            ],
        }
    ],
}


def test_a_filter_that_explodes_cql2s_validator_is_a_plain_400(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(eodc=Archive(CATALOGUE["eodc"], filter_pushdown=True))
    body = {"filter": SCHEMA_BOMB, "filter-lang": "cql2-json"}
    refused = httpx.post(f"{fed.url}/search", json=body, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["code"] == "InvalidParameterValue"
    assert "s_disjoint" in refused.json()["description"]
    direct = httpx.post(f"{fed.backend_urls['eodc']}/search", json=body, timeout=30)
    assert direct.status_code == 400  # the emulated backend refuses it the same way
