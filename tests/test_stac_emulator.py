"""The STAC emulator's Sort and Filter extensions, as a client of the server sees them.

Orders are checked against a brute force written here (missing values last in either
direction, date fields as instants at millisecond precision, ties by item id); filters against
``cql2`` on the items. Each extension can be switched off, as on servers that lack it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import cql2
import httpx
import orjson
import pytest
from factories import BASE_TIME, s2_item

from adapters.stac.emulator import create_emulator

# The same instant in three spellings, and one millisecond earlier.
CREATED = [
    "2021-10-24T11:51:01+02:00",
    "2021-10-24T09:51:01.000Z",
    "2021-10-24T09:51:01.0004Z",
    "2021-10-24T09:51:00.999Z",
]


def _items() -> list[dict[str, Any]]:
    """12 items: datetimes shared by three, a cloud cover missing on every fourth."""
    items = []
    for n in range(12):
        item = s2_item(f"P{(n * 5) % 12:02d}", BASE_TIME - timedelta(hours=n // 3 * 6))
        props = item["properties"]
        props["eo:cloud_cover"] = float(n * 7 % 5 * 10)
        if n % 4 == 0:
            del props["eo:cloud_cover"]
        props["created"] = CREATED[n % 4]
        props["platform"] = "sentinel-2a" if n % 3 else "sentinel-2b"
        items.append(item)
    return items


ITEMS = _items()


def _instant(text: str) -> str:
    value = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def expected_order(items: list[dict[str, Any]], sortby: list[tuple[str, bool]]) -> list[str]:
    ordered = sorted(items, key=lambda i: i["id"])
    for field, desc in reversed(sortby):

        def key(item: dict[str, Any], field: str = field, desc: bool = desc) -> tuple[bool, Any]:
            value = item["id"] if field == "id" else item["properties"].get(field)
            if value is not None and field in ("datetime", "created"):
                value = _instant(value)
            missing = value is None
            return (not missing if desc else missing, "" if missing else value)

        ordered.sort(key=key, reverse=desc)
    return [i["id"] for i in ordered]


def _client(**options: Any) -> httpx.AsyncClient:
    app = create_emulator(ITEMS, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://stac.test")


async def _ids(client: httpx.AsyncClient, method: str, params: dict[str, Any]) -> list[str]:
    params = {"limit": 100, **params}
    if method == "GET":
        response = await client.get("/search", params=params)
    else:
        response = await client.post("/search", json=params)
    assert response.status_code == 200, response.text
    return [f["id"] for f in response.json()["features"]]


SORTS = [
    [("created", True)],
    [("created", False)],
    [("eo:cloud_cover", True), ("datetime", False)],
    [("eo:cloud_cover", False), ("created", True)],
    [("datetime", False), ("id", True)],
    [("platform", True), ("eo:cloud_cover", True), ("id", False)],
]


def _label(sortby: list[tuple[str, bool]]) -> str:
    return ",".join(("-" if desc else "+") + field for field, desc in sortby)


@pytest.mark.parametrize("sortby", SORTS, ids=_label)
async def test_sortby_orders_by_every_key_missing_last(sortby: list[tuple[str, bool]]) -> None:
    expected = expected_order(ITEMS, sortby)
    text = _label(sortby)
    body = [
        {"field": f"properties.{f}" if f != "id" else f, "direction": "desc" if d else "asc"}
        for f, d in sortby
    ]
    async with _client(max_page_size=5) as client:
        assert await _ids(client, "GET", {"sortby": text}) == expected[:5]
        paged = []
        for offset in range(0, 12, 5):
            paged += await _ids(client, "POST", {"sortby": body, "token": f"next:{offset}"})
        assert paged == expected


async def test_without_the_sort_extension_sortby_is_ignored() -> None:
    newest_first = expected_order(ITEMS, [("datetime", True)])
    async with _client(sort=False) as client:
        assert await _ids(client, "GET", {"sortby": "+eo:cloud_cover"}) == newest_first
        landing = (await client.get("/")).json()
    assert not any("sort" in c for c in landing["conformsTo"])


FILTERS = [
    "eo:cloud_cover >= 20",
    "NOT (eo:cloud_cover > 10)",
    "eo:cloud_cover < 10 OR platform = 'sentinel-2b'",
    "created = TIMESTAMP('2021-10-24T09:51:01Z')",
    "id IN ('P00', 'P05') OR collection = 'other'",
]


@pytest.mark.parametrize("text", FILTERS)
async def test_filter_in_every_encoding_matches_like_cql2(text: str) -> None:
    expr = cql2.parse_text(text)
    expected = [i for i in expected_order(ITEMS, [("datetime", True)]) if _matches(expr, i)]
    as_json = expr.to_json()
    prefixed = orjson.loads(orjson.dumps(as_json).replace(b'"eo:', b'"properties.eo:'))
    async with _client() as client:
        assert await _ids(client, "GET", {"filter": text}) == expected
        json_text = orjson.dumps(as_json).decode()
        get_json = {"filter": json_text, "filter-lang": "cql2-json"}
        assert await _ids(client, "GET", get_json) == expected
        assert await _ids(client, "POST", {"filter": prefixed}) == expected
    assert 0 < len(expected) < len(ITEMS)


def _matches(expr: cql2.Expr, item_id: str) -> bool:
    item = next(i for i in ITEMS if i["id"] == item_id)
    try:
        return bool(expr.matches(item))
    except Exception:  # unknown: no match
        return False


@pytest.mark.parametrize(
    ("method", "params"),
    [
        pytest.param("GET", {"filter": "eo:cloud_cover >>> 3"}, id="bad-text"),
        pytest.param("GET", {"filter": "{nope", "filter-lang": "cql2-json"}, id="bad-json"),
        pytest.param("GET", {"filter": "gsd = 1", "filter-lang": "cql-text"}, id="unknown-lang"),
        pytest.param(
            "POST", {"filter": "gsd = 1", "filter-lang": "cql2-text"}, id="post-takes-json-only"
        ),
        pytest.param("POST", {"filter": {"op": "=", "args": [1]}}, id="invalid-json-expression"),
        pytest.param(
            "POST",
            {"filter": {"op": "=", "args": [{"property": "gsd"}, 1]}, "query": {"gsd": {"eq": 1}}},
            id="query-and-filter",
        ),
    ],
)
async def test_bad_filters_are_a_400_with_a_stac_error(method: str, params: dict[str, Any]) -> None:
    async with _client() as client:
        if method == "GET":
            response = await client.get("/search", params=params)
        else:
            response = await client.post("/search", json=params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "description"} and body["description"]


async def test_without_the_filter_extension_filter_is_ignored() -> None:
    async with _client(filter=False) as client:
        assert len(await _ids(client, "GET", {"filter": "eo:cloud_cover >>> 3"})) == len(ITEMS)
        without = (await client.get("/")).json()["conformsTo"]
    async with _client() as client:
        with_filter = (await client.get("/")).json()["conformsTo"]
    assert not any("cql2" in c or "filter" in c for c in without)
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in with_filter
