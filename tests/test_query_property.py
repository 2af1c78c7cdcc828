"""Property: over mixed backend kinds, paging a filtered, sorted search equals the brute force.

Random slices of the demo products (real-looking S1 GRD/SLC and S2 L1C/L2A over Czechia; all
tiles of a datatake share a datetime) are spread over 2-5 emulated backends of every kind (STAC
with the Sort and Filter extensions or without them, DHuS OpenSearch JSON and Atom, DHuS OData,
CDSE OData, resto, Terrascope) with random overlap, collections and page sizes. Random CQL2
filters (comparisons, BETWEEN, IN, LIKE, arrays, T_* and S_* operators under AND/OR/NOT) and
sort keys go through :func:`mqs.query.build_query`, the real edge, and every page through a
real paging token. The oracle evaluates the filter with ``cql2`` on each held product, sorts by
(:func:`mqs.ordering.primary_key`, product id) and must equal what the gateway returns: same
ids, same order, none twice, no backend failed, an exact ``numberMatched`` when there is one.

A first sort key some serving backend cannot sort by must be a 400 naming exactly those
backends. What each kind sorts by is this test's own table (:data:`SORTS`), not the adapters'.

Restrictions, each because a real API lacks the information (not a gateway choice):

* ``product:type`` of Sentinel-1 is ``GRD``/``SLC`` on DHuS, resto and Terrascope but
  ``IW_GRDH_1S``/``IW_SLC__1S`` on CDSE: with a CDSE backend only Sentinel-2 types are asked.
* ``sat:absolute_orbit`` is not asked: DHuS and CDSE derive one for Sentinel-2 products, whose
  STAC items (the products here) do not carry it.
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

import cql2
import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.registry import ADAPTERS, EMULATORS
from mqs.config import parse_config
from mqs.cql import matches
from mqs.demodata import generate_products
from mqs.errors import InvalidRequest
from mqs.federation import Federation, Member, SearchResult
from mqs.ordering import primary_key
from mqs.paging import TokenCodec
from mqs.query import SearchQuery, SortField, build_query

PRODUCTS = generate_products()  # sorted by datetime, then id
COLLECTIONS = ("sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a")
# kind label -> (kind, adapter options, page size option, collections it can serve)
KINDS: dict[str, tuple[str, dict[str, Any], str, tuple[str, ...]]] = {
    "stac": ("stac", {"sort": False}, "max_page_size", COLLECTIONS),
    "stac-cql2": ("stac", {"filter_extension": True}, "max_page_size", COLLECTIONS),
    "dhus": ("dhus", {}, "max_rows", COLLECTIONS),
    "dhus-atom": ("dhus", {"response_format": "atom"}, "max_rows", COLLECTIONS),
    "dhus-odata": ("dhus", {"search_api": "odata"}, "max_rows", COLLECTIONS),
    "cdse-odata": ("cdse-odata", {}, "max_page_size", COLLECTIONS),
    "resto": ("resto", {}, "max_records", COLLECTIONS),
    "terrascope": ("terrascope", {}, "max_page_size", COLLECTIONS[:3]),
}
DATES = {"datetime", "created"}
# kind label -> (first sort keys it sorts by exactly, directions); DHuS sorts by cloud cover
# only where every product has one (its Solr schema puts a missing number at 0, not last).
ASC_DESC = {"asc", "desc"}
SORTS: dict[str, tuple[set[str], set[str]]] = {
    "stac": ({"datetime"}, {"desc"}),
    "stac-cql2": ({"datetime", "created", "eo:cloud_cover", "id", "sat:relative_orbit"}, ASC_DESC),
    "dhus": (DATES | {"id", "sat:relative_orbit"}, ASC_DESC),
    "dhus-atom": (DATES | {"id", "sat:relative_orbit"}, ASC_DESC),
    "dhus-odata": (DATES, ASC_DESC),
    "cdse-odata": (DATES, ASC_DESC),
    "resto": (DATES, ASC_DESC),
    "terrascope": (DATES, ASC_DESC),
}
SORT_FIELDS = ("datetime", "created", "eo:cloud_cover", "id", "sat:relative_orbit")
PLATFORMS = ("sentinel-1a", "sentinel-1b", "sentinel-2a", "sentinel-2b")
ORBITS = (22, 36, 51, 73, 79, 122, 124, 146, 175)
TILES = ("33UUQ", "33UVQ", "33UVR", "33UWQ", "33UWR", "33UXQ", "33UXR", "33UYQ")
S2_TYPES = ("S2MSI1C", "S2MSI2A")
WINDOW = 80  # products per example: a few days, many datatake ties


def prop(name: str) -> dict[str, str]:
    return {"property": name}


def clause(op: str, *args: Any) -> dict[str, Any]:
    return {"op": op, "args": list(args)}


# --- filters ------------------------------------------------------------------------------------
def numbers(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    compare = st.tuples(st.sampled_from(["<", "<=", ">", ">=", "=", "<>"]), values)
    return st.one_of(
        compare.map(lambda t: clause(t[0], prop(name), t[1])),
        st.tuples(values, values).map(lambda t: clause("between", prop(name), *sorted(t))),
        st.lists(values, min_size=1, max_size=3).map(lambda v: clause("in", prop(name), v)),
    )


def terms(name: str, values: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    one = st.sampled_from(values).map(lambda v: clause("=", prop(name), v))
    many = st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)
    return one | many.map(lambda v: clause("in", prop(name), v))


def instants(window: list[dict[str, Any]]) -> st.SearchStrategy[str]:
    """The window's sensing times, the start or end of their second, or an hour later."""
    times = sorted({p["properties"]["datetime"] for p in window})
    nudge = st.sampled_from(["", ".000Z", ".999Z", "hour"])
    return st.tuples(st.sampled_from(times), nudge).map(_nudged)


def _nudged(pair: tuple[str, str]) -> str:
    text, how = pair
    if how == "hour":
        return f"{text[:11]}{(int(text[11:13]) + 1) % 24:02d}{text[13:]}"
    return text if not how else text[:19] + how


def times(window: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    moment = instants(window)
    stamp = moment.map(lambda t: {"timestamp": t})
    ops = st.sampled_from(["<", "<=", ">", ">=", "=", "t_before", "t_after", "t_intersects"])
    ends = st.one_of(
        st.tuples(moment, moment).map(sorted),
        moment.map(lambda t: [t, ".."]),
        moment.map(lambda t: ["..", t]),
    )
    span = ends.map(lambda e: {"interval": list(e)})
    return st.one_of(
        st.tuples(ops, stamp).map(lambda t: clause(t[0], prop("datetime"), t[1])),
        st.tuples(st.sampled_from(["t_intersects", "t_during", "t_disjoint"]), span).map(
            lambda t: clause(t[0], prop("datetime"), t[1])
        ),
    )


def areas() -> st.SearchStrategy[dict[str, Any]]:
    lon = st.integers(1200, 1850).map(lambda v: v / 100 + 0.003)
    lat = st.integers(4850, 5150).map(lambda v: v / 100 + 0.007)
    box = st.tuples(lon, lat, lon, lat).map(
        lambda b: {
            "bbox": [min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]) + 0.1, max(b[1], b[3]) + 0.1]
        }
    )
    triangle = st.tuples(lon, lat).map(
        lambda c: {
            "type": "Polygon",
            "coordinates": [
                [[c[0], c[1]], [c[0] + 1.3, c[1] + 0.2], [c[0] + 0.4, c[1] + 0.9], [c[0], c[1]]]
            ],
        }
    )
    ops = st.sampled_from(["s_intersects", "s_within", "s_disjoint", "s_contains"])
    return st.tuples(ops, box | triangle).map(lambda t: clause(t[0], prop("geometry"), t[1]))


def names(window: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    ids = tuple(p["id"] for p in window)
    patterns = st.sampled_from(ids).map(lambda i: i[:20] + "%") | st.sampled_from(
        ["S1A%", "S2B_MSIL2A%", "%_T33UXQ_%", "S1_\\_IW%", "%GRDH%"]
    )
    return st.one_of(
        terms("id", ids),
        patterns.map(lambda p: clause("like", prop("id"), p)),
        terms("collection", COLLECTIONS),
    )


def atoms(window: list[dict[str, Any]], s1_types: bool) -> st.SearchStrategy[dict[str, Any]]:
    clouds = st.sampled_from(sorted({p["properties"].get("eo:cloud_cover", 0.0) for p in window}))
    clouds = clouds | st.sampled_from([0, 10, 25.5, 50, 90, 100])
    polarisations = st.lists(
        st.sampled_from(["VV", "VH", "HH"]), min_size=1, max_size=2, unique=True
    )
    types = S2_TYPES + (("GRD", "SLC") if s1_types else ())
    return st.one_of(
        numbers("eo:cloud_cover", clouds),
        numbers("sat:relative_orbit", st.sampled_from(ORBITS)),
        terms("platform", PLATFORMS),
        terms("sat:orbit_state", ("ascending", "descending")),
        terms("product:type", types),
        terms("grid:code", tuple(f"MGRS-{t}" for t in TILES)),
        st.tuples(st.sampled_from(["a_contains", "a_overlaps"]), polarisations).map(
            lambda t: clause(t[0], prop("sar:polarizations"), t[1])
        ),
        times(window),
        areas(),
        names(window),
    )


def filters(window: list[dict[str, Any]], s1_types: bool) -> st.SearchStrategy[dict[str, Any]]:
    """An AND of 1-2 parts; a part is a clause, its negation, or an OR (or NOR) of clauses."""
    atom = atoms(window, s1_types)
    literal = st.one_of(atom, atom, atom, atom.map(lambda c: clause("not", c)))
    either = st.lists(literal, min_size=2, max_size=3).map(lambda a: clause("or", *a))
    part = st.one_of(literal, literal, literal, either, either.map(lambda c: clause("not", c)))
    parts = st.lists(part, min_size=1, max_size=2)
    return parts.map(lambda a: a[0] if len(a) == 1 else clause("and", *a))


# --- federations and searches -------------------------------------------------------------------
@st.composite
def backends(draw: st.DrawFn, label: str, optical: bool) -> dict[str, Any]:
    """One backend; ``optical``: it serves Sentinel-2 only (when it can)."""
    offered = [c for c in KINDS[label][3] if not optical or c.startswith("sentinel-2")]
    served = draw(st.lists(st.sampled_from(offered), min_size=1, max_size=4, unique=True))
    return {"label": label, "collections": sorted(served), "page": draw(st.integers(1, 8))}


@st.composite
def sort_keys(draw: st.DrawFn) -> list[dict[str, str]]:
    keys = draw(st.lists(st.sampled_from(SORT_FIELDS), min_size=1, max_size=2, unique=True))
    first = draw(st.sampled_from(["datetime", "datetime", "created", keys[0]]))
    keys = [first, *[k for k in keys if k != first]][:2]
    return [{"field": k, "direction": draw(st.sampled_from(["asc", "desc"]))} for k in keys]


def able(first: dict[str, str]) -> list[str]:
    """The kinds that can sort by ``first`` (DHuS by cloud cover if it serves Sentinel-2 only)."""
    cloud = first["field"] == "eo:cloud_cover"
    return [
        label
        for label, (fields, directions) in SORTS.items()
        if (first["field"] in fields or (cloud and label in ("dhus", "dhus-atom")))
        and first["direction"] in directions
    ]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly federations that can sort as asked (a 400 ends the example early)."""
    start = draw(st.integers(0, len(PRODUCTS) - WINDOW))
    window = PRODUCTS[start : start + WINDOW]
    sortby = draw(sort_keys())
    pool = draw(st.sampled_from([able(sortby[0])] * 4 + [sorted(KINDS)]))
    labels = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=5))
    optical = sortby[0]["field"] == "eo:cloud_cover" and draw(st.integers(0, 4)) > 0
    members = [draw(backends(label, optical)) for label in labels]
    filtered = draw(st.sampled_from([True, True, True, False]))
    expr = draw(filters(window, "cdse-odata" not in labels)) if filtered else None
    params: dict[str, Any] = {
        "sortby": sortby,
        "limit": draw(st.sampled_from([1, 2, 3, 5, 8, 13, 30])),
    }
    if expr is not None:
        text = draw(st.booleans())
        params["filter"] = cql2.Expr(expr).to_text() if text else expr
        params["filter-lang"] = "cql2-text" if text else "cql2-json"
    if draw(st.booleans()):
        params["collections"] = draw(st.lists(st.sampled_from(COLLECTIONS), min_size=1, max_size=3))
    seed, overlap = draw(st.integers(0, 2**16)), draw(st.sampled_from([0.0, 0.2, 0.5, 0.9]))
    return {
        "start": start,
        "members": members,
        "seed": seed,
        "overlap": overlap,
        "filter": expr,
        "params": params,
    }


def holdings(case: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """What each backend holds: every product of the window once, by one backend serving its
    collection, and copies at the other ones with the case's ``overlap`` probability (a
    product only one backend holds is where a wrong translation cannot hide)."""
    rng = random.Random(case["seed"])
    held: list[list[dict[str, Any]]] = [[] for _ in case["members"]]
    for product in PRODUCTS[case["start"] : case["start"] + WINDOW]:
        serving = [
            i for i, m in enumerate(case["members"]) if product["collection"] in m["collections"]
        ]
        if not serving or rng.random() < 0.1:
            continue  # nobody holds it
        home = rng.choice(serving)
        for i in serving:
            if i == home or rng.random() < case["overlap"]:
                held[i].append(product)
    return held


def config_of(case: dict[str, Any]) -> Any:
    backends_ = []
    for i, member in enumerate(case["members"]):
        kind, options, page_option, _ = KINDS[member["label"]]
        backends_.append(
            {
                "id": f"b{i}",
                "kind": kind,
                "url": f"http://b{i}.test",
                "priority": (i * 7) % 5,
                "collections": member["collections"],
                "options": {**options, page_option: member["page"]},
            }
        )
    return parse_config({"collections": {c: {} for c in COLLECTIONS}, "backends": backends_})


async def page_all(federation: Federation, query: SearchQuery) -> list[SearchResult]:
    """Every page of ``query``, each through a real paging token."""
    codec = TokenCodec(b"secret", "cfg", 600)
    results: list[SearchResult] = []
    position = None
    for _ in range(400):
        results.append(await federation.search(query, position))
        if results[-1].next_position is None:
            return results
        token = codec.encode(results[-1].next_position, query.fingerprint())
        position = codec.decode(token, query.fingerprint())
    raise AssertionError("paging did not end")


def brute_force(case: dict[str, Any], held: list[list[dict[str, Any]]]) -> list[str]:
    """Filter -> de-duplicate -> sort over the union of the holdings: the expected ids."""
    union = {p["id"]: p for items in held for p in items}
    wanted = case["params"].get("collections") or COLLECTIONS
    expr = cql2.Expr(case["filter"]) if case["filter"] is not None else None
    found = [
        p
        for p in union.values()
        if p["collection"] in wanted and (expr is None or matches(expr, p))
    ]
    sortby = tuple(SortField(s["field"], s["direction"]) for s in case["params"]["sortby"])
    found.sort(key=lambda p: (primary_key(p, sortby), p["id"]))
    return [p["id"] for p in found]


def unable(case: dict[str, Any], query: SearchQuery) -> set[str]:
    """The serving backends that cannot order by the search's first key (this test's table)."""
    first = case["params"]["sortby"][0]
    wanted = set(query.collections or COLLECTIONS)
    out = set()
    for i, member in enumerate(case["members"]):
        if not wanted & set(member["collections"]):
            continue
        fields, directions = SORTS[member["label"]]
        optical = all(c.startswith("sentinel-2") for c in member["collections"])
        cloud = member["label"] in ("dhus", "dhus-atom") and optical
        known = first["field"] in fields or (cloud and first["field"] == "eo:cloud_cover")
        if not known or first["direction"] not in directions:
            out.add(f"b{i}")
    return out


async def run(case: dict[str, Any]) -> tuple[SearchQuery, list[SearchResult] | InvalidRequest]:
    config = config_of(case)
    query = build_query(case["params"], config.collections, 10, 1000)
    clients, members = [], []
    for backend, items in zip(config.backends, holdings(case), strict=True):
        app = EMULATORS[backend.kind](items)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
        clients.append(client)
        members.append(Member(backend, ADAPTERS[backend.kind](backend, client)))
    try:
        return query, await page_all(Federation(members, config.routing()), query)
    except InvalidRequest as exc:
        return query, exc
    finally:
        for client in clients:
            await client.aclose()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases())
def test_paging_a_filtered_sorted_search_equals_brute_force(case: dict[str, Any]) -> None:
    query, answer = asyncio.run(run(case))
    cannot = unable(case, query)
    if isinstance(answer, InvalidRequest):
        event("a 400: a backend cannot sort by the first key")
        assert cannot, answer
        assert set(re.findall(r"'(b\d)'", str(answer))) == cannot, answer
        return
    assert not cannot, f"expected a 400 for {sorted(cannot)}"
    for result in answer:
        failed = {b: o.detail for b, o in result.outcomes.items() if o.status != "ok"}
        assert not failed, failed
    got = [item["id"] for result in answer for item in result.items]
    expected = brute_force(case, holdings(case))
    assert len(got) == len(set(got)), "a product came twice"
    assert got == expected
    counts = {r.matched for r in answer if r.matched is not None}
    assert counts <= {len(expected)}, counts
    event(f"{'no' if not expected else 'some'} matches, filter: {case['filter'] is not None}")
