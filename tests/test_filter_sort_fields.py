"""The Filter, Sort and Fields extensions through the gateway's HTTP API, as a client uses them.

Two emulated STAC archives with overlapping holdings; every expected answer is computed by
brute force over the catalogue with ``cql2`` (filter), de-duplication by product and sorting.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import cql2
import httpx
import orjson
import pytest
from conftest import TEST_SECRET, Archive, LiveFederation, MakeFederation
from factories import BASE_TIME, TILE_BBOX, s2_item, series
from jsonschema import Draft202012Validator
from stac_schema import item_errors

from mqs.app import create_app
from mqs.config import Settings
from mqs.serving import bound_socket, serving_in_thread

ITEMS = series(14, tiles=("33UXQ", "33UWQ", "33UVQ"))  # cloud cover i % 7 * 10, ties per datatake
for n, it in enumerate(ITEMS):  # vary the platform and the ingestion time too
    it["properties"]["platform"] = "sentinel-2a" if n % 3 else "sentinel-2b"
    it["properties"]["created"] = f"2021-11-{1 + (n * 7) % 28:02d}T00:00:00.000Z"
A_ITEMS, B_ITEMS = ITEMS[: 2 * len(ITEMS) // 3], ITEMS[len(ITEMS) // 3 :]


@pytest.fixture
def fed(make_federation: MakeFederation) -> LiveFederation:
    return make_federation(
        a=Archive(A_ITEMS, priority=1, emulator={"max_page_size": 4}),
        b=Archive(B_ITEMS, emulator={"max_page_size": 3}),
    )


def _pages(client: httpx.Client, first: httpx.Response) -> list[dict[str, Any]]:
    assert first.status_code == 200, first.text
    page, features = first.json(), []
    while True:
        assert "federation:missing" not in page, page
        features += page["features"]
        link = next((x for x in page["links"] if x["rel"] == "next"), None)
        if link is None:
            return features
        if link.get("method") == "POST":
            page = client.post(link["href"], json=link["body"]).json()
        else:
            page = client.get(link["href"]).json()


def get_all(url: str, **params: Any) -> list[dict[str, Any]]:
    with httpx.Client(timeout=30) as client:
        return _pages(client, client.get(f"{url}/search", params=params))


def post_all(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.Client(timeout=30) as client:
        return _pages(client, client.post(f"{url}/search", json=body))


def brute_force(text: str | None, sortby: str = "-datetime") -> list[str]:
    """Filter every copy with cql2, keep one per product, sort by ``sortby`` then id."""
    expr = cql2.parse_text(text) if text else None
    ordered = sorted(
        {i["id"]: i for i in ITEMS if expr is None or expr.matches(i)}.values(), key=_id
    )
    for token in reversed(sortby.split(",")):
        ordered.sort(key=_value(token.lstrip("+-")), reverse=token.startswith("-"))
    return [i["id"] for i in ordered]


def _id(item: dict[str, Any]) -> str:
    return str(item["id"])


def _value(name: str) -> Any:
    return _id if name == "id" else lambda item: item["properties"][name]


def ids(features: list[dict[str, Any]]) -> list[str]:
    return [f["id"] for f in features]


FILTERS = [
    "eo:cloud_cover < 25",
    "eo:cloud_cover BETWEEN 10 AND 40 AND platform = 'sentinel-2a'",
    "platform IN ('sentinel-2b') OR eo:cloud_cover >= 60",
    "NOT (eo:cloud_cover > 20)",
    "S_INTERSECTS(geometry, POLYGON((15.2 49.6, 15.4 49.6, 15.4 49.8, 15.2 49.8, 15.2 49.6)))",
    "S_WITHIN(geometry, BBOX(12, 49, 15.2, 51))",
    "T_INTERSECTS(datetime, INTERVAL('2021-10-15T00:00:00Z', '2021-10-20T23:59:59Z'))",
    "datetime >= TIMESTAMP('2021-10-20T00:00:00Z') AND eo:cloud_cover <> 30",
    "id LIKE '%T33UWQ%' AND collection = 'sentinel-2-l2a'",
    "A_CONTAINS(instruments, ('msi')) AND CASEI(platform) = CASEI('SENTINEL-2B')",
]


@pytest.mark.parametrize("text", FILTERS)
def test_filter_text_json_get_post_all_give_the_brute_force_answer(
    fed: LiveFederation, text: str
) -> None:
    expected = brute_force(text)
    assert expected, "a filter that matches nothing proves little"
    as_json = cql2.parse_text(text).to_json()
    via_text = get_all(fed.url, filter=text, limit=4)
    via_json_get = get_all(
        fed.url, filter=orjson.dumps(as_json).decode(), **{"filter-lang": "cql2-json"}, limit=5
    )
    via_post = post_all(fed.url, {"filter": as_json, "filter-lang": "cql2-json", "limit": 3})
    assert ids(via_text) == ids(via_json_get) == ids(via_post) == expected


def test_filter_on_items_endpoint_and_with_other_parameters(fed: LiveFederation) -> None:
    with httpx.Client(timeout=30) as client:
        url = f"{fed.url}/collections/sentinel-2-l2a/items"
        got = _pages(client, client.get(url, params={"filter": "eo:cloud_cover < 25", "limit": 5}))
    assert ids(got) == brute_force("eo:cloud_cover < 25")
    bbox = TILE_BBOX["33UXQ"]
    got = post_all(
        fed.url,
        {"bbox": list(bbox), "filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 25]}},
    )
    expected = brute_force(
        "eo:cloud_cover < 25 AND S_INTERSECTS(geometry, BBOX(15.0, 49.5, 16.5, 50.5))"
    )
    assert ids(got) == expected


def test_filter_on_collection_routes_the_search(make_federation: MakeFederation) -> None:
    """A filter naming a collection asks only its backends: another one being down is no loss."""
    name = "S1A_IW_GRDH_1SDV_20211024T165022_20211024T165047_040220_04C3C2_ABCD"
    s1 = s2_item(name, BASE_TIME, collection="sentinel-1-grd")
    fed = make_federation(
        up=Archive([*ITEMS, s1]),
        down=Archive([], collections=["sentinel-2-l2a"], down=True),
    )
    with httpx.Client(timeout=30) as client:
        page = client.get(f"{fed.url}/search", params={"filter": "collection = 'sentinel-1-grd'"})
    assert page.status_code == 200
    assert ids(page.json()["features"]) == [s1["id"]]
    assert "federation:missing" not in page.json()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter": "bogus(eo:cloud_cover, 1)"}, "unsupported operator 'bogus'"),
        ({"filter": "eo:cloud_cover <"}, "invalid filter"),
        ({"filter": "collection = 'sentinel-9'"}, "unknown collection"),
        ({"filter": "S_INTERSECTS(geometry, POINT(500 5))"}, "lon/lat"),
        ({"filter": "x = 1", "filter-lang": "cql3"}, "filter-lang"),
        ({"filter": "x = 1", "filter-crs": "EPSG:3857"}, "filter-crs"),
        ({"filter": '{"op": "=", "args": [1]}', "filter-lang": "cql2-json"}, "invalid filter"),
        ({"filter": " AND ".join(["x = 1"] * 1200)}, "terms"),
        ({"sortby": "-eo:cloud_cover,-eo:cloud_cover"}, "twice"),
        ({"sortby": "a,b,c,d,e,f"}, "at most"),
        ({"fields": "properties." + "x" * 300}, "fields"),
    ],
)
def test_bad_filter_sort_fields_are_400_naming_the_problem(
    fed: LiveFederation, params: dict[str, str], message: str
) -> None:
    response = httpx.get(f"{fed.url}/search", params=params, timeout=30)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameterValue"
    assert message in body["description"], body


def test_bad_post_filter_and_sortby_are_400(fed: LiveFederation) -> None:
    for body in (
        {"filter": {"op": "nope", "args": [{"property": "x"}, 1]}},
        {"filter": {"op": "=", "args": [{"property": "x"}, 1]}, "filter-lang": "cql2-text"},
        {"sortby": [{"field": "datetime", "direction": "sideways"}]},
        {"filter": {"op": "=", "args": [{"property": "x"}, -(2**63) - 1]}},  # found by fuzzing
        {"filter": {"": 2**64}},
        {"query": {"eo:cloud_cover": {"eq": 2**64}}},
    ):
        response = httpx.post(f"{fed.url}/search", json=body, timeout=30)
        assert response.status_code == 400, (body, response.text)
        assert "description" in response.json()


@pytest.mark.parametrize(
    "sortby",
    [
        "+datetime",
        "-eo:cloud_cover,+id",
        "id",
        "-id",
        "+created,-datetime",
        "-platform,eo:cloud_cover",
    ],
)
def test_sortby_pages_in_exactly_the_requested_order(fed: LiveFederation, sortby: str) -> None:
    text = "eo:cloud_cover <> 10"
    expected = brute_force(text, sortby)
    got = get_all(fed.url, sortby=sortby, filter=text, limit=4)
    assert ids(got) == expected
    fields = [
        {"field": f.lstrip("+-"), "direction": "desc" if f[0] == "-" else "asc"}
        for f in sortby.split(",")
    ]
    body = {"sortby": fields, "filter": cql2.parse_text(text).to_json(), "limit": 5}
    assert ids(post_all(fed.url, body)) == expected


def test_a_key_some_backend_cannot_sort_by_is_400_naming_it(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(
        sorts=Archive(ITEMS),
        plain=Archive(ITEMS[:3], options={"sort": False}),
    )
    response = httpx.get(f"{fed.url}/search", params={"sortby": "-eo:cloud_cover"}, timeout=30)
    assert response.status_code == 400
    assert "'plain'" in response.json()["description"]
    assert "datetime" in response.json()["description"]  # what the search can sort by
    sortables = httpx.get(f"{fed.url}/sortables", timeout=30).json()
    assert list(sortables["properties"]) == ["datetime"]
    assert (
        httpx.get(f"{fed.url}/search", params={"sortby": "-datetime"}, timeout=30).status_code
        == 200
    )


def test_fields_include_exclude_and_baseline(fed: LiveFederation) -> None:
    expected = brute_force(None)
    only_cloud = get_all(fed.url, fields="eo:cloud_cover,-assets,-links", limit=6)
    assert ids(only_cloud) == expected  # fields never change which items or their order
    for feature in only_cloud:
        assert set(feature) == {"type", "stac_version", "id", "collection", "properties"}
        assert set(feature["properties"]) == {"eo:cloud_cover"}
    no_assets = post_all(fed.url, {"fields": {"exclude": ["assets", "properties.providers"]}})
    assert ids(no_assets) == expected
    assert all("assets" not in f and "platform" in f["properties"] for f in no_assets)
    assert all("providers" not in f["properties"] for f in no_assets)
    baseline = post_all(fed.url, {"fields": {}, "limit": 20})
    assert ids(baseline) == expected
    assert all(item_errors(f) == [] for f in baseline)  # the baseline keeps items valid STAC
    assert all(set(f["properties"]) == {"datetime"} for f in baseline)
    specific = post_all(
        fed.url,
        {
            "fields": {
                "include": ["properties", "geometry"],
                "exclude": ["properties.datetime", "geometry"],
            }
        },
    )
    assert all(
        "datetime" not in f["properties"] and "platform" in f["properties"] for f in specific
    )
    assert all("geometry" in f for f in specific)  # the same path in both: included wins
    none_included = post_all(fed.url, {"fields": {"include": None, "exclude": ["geometry"]}})
    assert all(set(f["properties"]) == {"datetime"} and "geometry" not in f for f in none_included)
    null = httpx.post(f"{fed.url}/search", json={"fields": None}, timeout=30)
    assert null.status_code == 400


def test_queryables_per_collection_are_json_schema(fed: LiveFederation) -> None:
    with httpx.Client(timeout=30) as client:
        root = client.get(f"{fed.url}/queryables")
        s1 = client.get(f"{fed.url}/collections/sentinel-1-grd/queryables").json()
        s2 = client.get(f"{fed.url}/collections/sentinel-2-l2a/queryables").json()
        missing = client.get(f"{fed.url}/collections/nope/queryables")
        conformance = client.get(f"{fed.url}/conformance").json()["conformsTo"]
        landing = client.get(f"{fed.url}/").json()
        collection = client.get(f"{fed.url}/collections/sentinel-2-l2a").json()
    rel = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
    assert [x["href"] for x in landing["links"] if x["rel"] == rel] == [f"{fed.url}/queryables"]
    assert [x["href"] for x in collection["links"] if x["rel"] == rel] == [
        f"{fed.url}/collections/sentinel-2-l2a/queryables"
    ]
    assert root.status_code == 200
    assert root.headers["content-type"].startswith("application/schema+json")
    for doc in (root.json(), s1, s2):
        Draft202012Validator.check_schema(doc)
    assert "sar:polarizations" in s1["properties"] and "eo:cloud_cover" not in s1["properties"]
    assert "eo:cloud_cover" in s2["properties"] and "sar:polarizations" not in s2["properties"]
    assert s2["$id"].endswith("/collections/sentinel-2-l2a/queryables")
    assert s2["properties"]["collection"]["enum"] == ["sentinel-2-l2a"]
    assert missing.status_code == 404
    for uri in (
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
        "https://api.stacspec.org/v1.1.0/item-search#sort",
        "https://api.stacspec.org/v1.0.0/item-search#fields",
    ):
        assert uri in conformance


def _gateway_over(fed: LiveFederation, stack: ExitStack, config: Any) -> str:
    sock = bound_socket()
    app = create_app(config, Settings(token_secret=TEST_SECRET))
    return stack.enter_context(serving_in_thread([(app, sock)]))[0]


def test_another_instance_continues_a_token_but_not_after_a_config_change(
    fed: LiveFederation,
) -> None:
    body = {
        "filter": cql2.parse_text("eo:cloud_cover < 45").to_json(),
        "sortby": [{"field": "id", "direction": "asc"}],
        "limit": 4,
    }
    with ExitStack() as stack, httpx.Client(timeout=30) as client:
        twin = _gateway_over(fed, stack, fed.config)
        first = client.post(f"{fed.url}/search", json=body).json()
        link = next(x for x in first["links"] if x["rel"] == "next")
        rest = _pages(client, client.post(link["href"].replace(fed.url, twin), json=link["body"]))
        assert ids(first["features"]) + ids(rest) == brute_force("eo:cloud_cover < 45", "id")
        changed = fed.config.model_copy(
            update={"backends": [b.model_copy(update={"priority": 7}) for b in fed.config.backends]}
        )
        other = _gateway_over(fed, stack, changed)
        replay = client.post(f"{other}/search", json=link["body"])
    assert replay.status_code == 400
    assert "another configuration" in replay.json()["description"]
