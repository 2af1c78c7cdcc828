"""CQL2 pushdown equivalence: pushed down or evaluated by the gateway, a filter finds the same.

For each of the kinds DHuS (OpenSearch), CDSE OData, resto and Terrascope, three weeks of the
demo products are served by one backend with ``filter_pushdown: true`` and by an identical one
with ``false`` (the gateway then evaluates every clause itself), each behind its own gateway.
Every filter of :data:`FILTERS` (clauses the kind translates, clauses it cannot, OR/NOT mixes,
lifted time and area clauses) goes through the HTTP API as CQL2 text (GET) and CQL2 JSON
(POST), paged to the end: both gateways must give the same ids in the same order, equal to a
brute force with ``cql2`` over the products. The emulators' request logs show what was pushed:
each kind's translation of the clauses it can express (exactly, or as a superset the gateway
checks again) reaches its backend only with pushdown on; and a filter the backend evaluates is
counted there (an exact ``numberMatched``). DHuS is asked through OpenSearch: with
``search_api: odata`` it is sent no filter clause at all.

``product:type`` is only asked with Sentinel-2 values here; Sentinel-1 types (CDSE's
``IW_GRDH_1S`` is ``GRD`` on its items, as elsewhere) are in tests/test_cdse_federation.py.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import cql2
import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from searching import all_pages, ids

from mqs.cql import matches
from mqs.demodata import generate_products
from mqs.ordering import primary_key
from mqs.query import DEFAULT_SORT

PRODUCTS = generate_products(start=date(2021, 10, 1), end=date(2021, 10, 22))
# kind -> (collections served, how each pushed property shows in the backend's request log)
KINDS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "dhus": (
        ("sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a"),
        {
            "cloud": "cloudcoverpercentage:",
            "rel": "relativeorbitnumber:",
            "abs": " orbitnumber:",
            "state": "orbitdirection:",
            "platform": "platformserialidentifier:",
            "pol": "polarisationmode:",
            "tile": "identifier:*_T",
        },
    ),
    "cdse-odata": (
        ("sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a"),
        {
            "cloud": "'cloudCover'",
            "rel": "'relativeOrbitNumber'",
            "abs": "'orbitNumber'",
            "state": "'orbitDirection'",
            "platform": "'platformSerialIdentifier'",
            "pol": "'polarisationChannels'",
            "tile": "'tileId'",
        },
    ),
    "resto": (
        ("sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a"),
        {
            "cloud": "'cloudCover'",
            "rel": "'relativeOrbitNumber'",
            "abs": "'orbitNumber'",
            "state": "'orbitDirection'",
            "tile": "'tileId'",
        },
    ),
    "terrascope": (
        ("sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c"),
        {
            "cloud": "'cloudCover'",
            "rel": "'relativeOrbitNumber'",
            "state": "'orbitDirection'",
            "tile": "'tileId'",
        },
    ),
}
# (id, CQL2 text, kind -> the properties whose clauses that kind's requests carry)
FILTERS: list[tuple[str, str, dict[str, set[str]]]] = [
    (
        "cloud-lte",
        "eo:cloud_cover <= 30",
        {"dhus": {"cloud"}, "cdse-odata": {"cloud"}, "resto": {"cloud"}, "terrascope": {"cloud"}},
    ),
    (
        "cloud-lt-superset",
        "eo:cloud_cover < 30.5",
        {"dhus": {"cloud"}, "cdse-odata": {"cloud"}, "resto": {"cloud"}, "terrascope": {"cloud"}},
    ),
    (
        "between-and-platform",
        "eo:cloud_cover BETWEEN 20 AND 60 AND platform = 'sentinel-2b'",
        {
            "dhus": {"cloud", "platform"},
            "cdse-odata": {"platform"},
            "resto": {"cloud"},
            "terrascope": {"cloud"},
        },
    ),
    (
        "orbit-in-and-state",
        "sat:relative_orbit IN (22, 146) AND sat:orbit_state = 'ascending'",
        {
            "dhus": {"rel", "state"},
            "cdse-odata": {"rel", "state"},
            "resto": {"rel", "state"},
            "terrascope": {"state"},
        },
    ),
    (
        "orbit-and-tile",
        "sat:relative_orbit = 79 AND grid:code = 'MGRS-33UXQ'",
        {
            "dhus": {"rel", "tile"},
            "cdse-odata": {"rel", "tile"},
            "resto": {"rel", "tile"},
            "terrascope": {"rel", "tile"},
        },
    ),
    (
        "polarisations-and-state",
        "A_CONTAINS(sar:polarizations, ('VV', 'VH')) AND sat:orbit_state = 'descending'",
        {
            "dhus": {"pol", "state"},
            "cdse-odata": {"pol", "state"},
            "resto": {"state"},
            "terrascope": {"state"},
        },
    ),
    (
        "s2-type-and-cloud-gt",
        "product:type IN ('S2MSI1C', 'S2MSI2A') AND eo:cloud_cover > 50",
        {"dhus": {"cloud"}, "cdse-odata": {"cloud"}, "resto": {"cloud"}, "terrascope": {"cloud"}},
    ),
    ("or-mix", "eo:cloud_cover < 10 OR sat:orbit_state = 'ascending'", {}),
    ("not-unknown-for-sar", "NOT (eo:cloud_cover > 15)", {}),
    (
        "platforms-and-not-orbit",
        "platform IN ('sentinel-1a', 'sentinel-2a') AND NOT (sat:relative_orbit = 22)",
        {"dhus": {"platform"}, "cdse-odata": {"platform"}},
    ),
    (
        "cloud-neq-and-tiles",
        "eo:cloud_cover <> 100 AND grid:code IN ('MGRS-33UWQ', 'MGRS-33UWR')",
        {"dhus": {"cloud"}, "cdse-odata": {"cloud", "tile"}},
    ),
    (
        "like-and-orbit-gte",
        "id LIKE 'S2B_MSIL1C%' AND sat:relative_orbit >= 100",
        {"dhus": {"rel"}, "cdse-odata": {"rel"}, "resto": {"rel"}},
    ),
    (
        "time-and-cloud",
        "T_INTERSECTS(datetime, INTERVAL('2021-10-05T00:00:00Z', '2021-10-12T00:00:00Z'))"
        " AND eo:cloud_cover >= 40",
        {"dhus": {"cloud"}, "cdse-odata": {"cloud"}, "resto": {"cloud"}, "terrascope": {"cloud"}},
    ),
    (
        "area-and-state",
        "S_INTERSECTS(geometry, BBOX(14.5, 49.5, 15.5, 50.2)) AND sat:orbit_state = 'descending'",
        {
            "dhus": {"state"},
            "cdse-odata": {"state"},
            "resto": {"state"},
            "terrascope": {"state"},
        },
    ),
    (
        "collection-and-absolute-orbit",
        "collection = 'sentinel-1-grd' AND sat:absolute_orbit > 39900",
        {"dhus": {"abs"}, "cdse-odata": {"abs"}, "resto": {"abs"}},
    ),
    ("case-never-matches", "sat:orbit_state = 'Ascending'", {}),
]


FULLY_PUSHED = "eo:cloud_cover <= 30"  # every kind here evaluates it exactly


def brute_force(products: list[dict[str, Any]], text: str) -> list[str]:
    """The products ``text`` selects, newest first, then by id."""
    expr = cql2.Expr(cql2.parse_text(text).to_json())
    found = [p for p in products if matches(expr, p)]
    found.sort(key=lambda p: (primary_key(p, DEFAULT_SORT), p["id"]))
    return [p["id"] for p in found]


def get_all(url: str, params: dict[str, Any]) -> list[str]:
    """Every page of a GET search, following ``next`` links; no backend may be missing."""
    found: list[str] = []
    with httpx.Client(timeout=60) as client:
        page = client.get(f"{url}/search", params=params).json()
        while True:
            assert "features" in page and "federation:missing" not in page, page
            found += [f["id"] for f in page["features"]]
            link = next((x for x in page["links"] if x["rel"] == "next"), None)
            if link is None:
                return found
            page = client.get(link["href"]).json()


def both_ways(fed: LiveFederation, text: str) -> tuple[list[str], list[str]]:
    """(CQL2 text on GET, CQL2 JSON on POST), each paged to the end."""
    via_get = get_all(fed.url, {"filter": text, "filter-lang": "cql2-text", "limit": 30})
    body = {"filter": cql2.parse_text(text).to_json(), "filter-lang": "cql2-json", "limit": 45}
    return via_get, ids(all_pages(fed.url, body))


def matched(fed: LiveFederation, text: str) -> int | None:
    """``numberMatched`` of the search's first page (given only when it is exact)."""
    params = {"filter": text, "filter-lang": "cql2-text", "limit": 5}
    page = httpx.get(f"{fed.url}/search", params=params, timeout=60).json()
    count: int | None = page.get("numberMatched")
    return count


def logged(fed: LiveFederation) -> list[str]:
    """The backend's request log so far (queries / parameters), one text per request."""
    return [str(entry) for entry in fed.emulators["b"].state.queries]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_pushed_down_or_not_a_filter_finds_the_same(
    make_federation: MakeFederation, kind: str
) -> None:
    collections, markers = KINDS[kind]
    products = [p for p in PRODUCTS if p["collection"] in collections]
    on = make_federation(b=Archive(products, kind=kind, collections=list(collections)))
    off = make_federation(
        b=Archive(products, kind=kind, collections=list(collections), filter_pushdown=False)
    )
    answered = 0
    for name, text, pushed in FILTERS:
        expected = brute_force(products, text)
        seen_on, seen_off = len(logged(on)), len(logged(off))
        assert both_ways(on, text) == (expected, expected), name
        assert both_ways(off, text) == (expected, expected), name
        sent_on, sent_off = " ".join(logged(on)[seen_on:]), " ".join(logged(off)[seen_off:])
        for prop, marker in markers.items():
            assert marker not in sent_off, (name, prop)
            assert (marker in sent_on) == (prop in pushed.get(kind, set())), (name, prop)
        answered += bool(expected)
    assert answered >= len(FILTERS) - 3  # a table of empty answers would prove nothing
    # Evaluated by the backend, a filter's matches are counted there: the count is exact.
    expected = brute_force(products, FULLY_PUSHED)
    assert matched(on, FULLY_PUSHED) == len(expected) > 0
    assert matched(off, FULLY_PUSHED) is None  # the gateway filtered: no exact count
