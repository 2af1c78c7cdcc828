"""Collection search on ``GET /collections``: free text, bbox, datetime, limit and paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series
from pystac_client import Client, ConformanceClasses

from mqs.collection_search import CollectionQuery, matches, parse_collection_query
from mqs.errors import InvalidRequest

WORLD_SINCE_2018 = {"bbox": [-180, -90, 180, 90], "interval": ["2018-04-30T00:00:00Z", None]}
ALPS_2020 = {"bbox": [5, 44, 16, 48], "interval": ["2020-01-01T00:00:00Z", "2020-12-31T23:59:59Z"]}
EXTRA = {
    "s5p-no2": {
        "title": "Sentinel-5P NO2",
        "description": "Tropospheric nitrogen dioxide columns.",
        "keywords": ["atmosphere", "air quality"],
        "extent": WORLD_SINCE_2018,
    },
    "alps-snow": {
        "title": "Alpine snow cover",
        "description": "Daily fractional snow cover over the Alps.",
        "keywords": ["cryosphere"],
        "extent": ALPS_2020,
    },
}
SENTINEL = ["sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a"]
# No backend knows an extent for these (eodc has no items of them): the whole world, any time.
UNKNOWN = SENTINEL[:3]


@pytest.fixture(scope="module")
def fed(make_module_federation: MakeFederation) -> LiveFederation:
    # eodc holds 2021-10-19..24 Sentinel-2 L2A items over tile 33UXQ (15-16.5 E, 49.5-50.5 N):
    # sentinel-2-l2a's extent comes from it; the two extra collections have configured ones.
    return make_module_federation(eodc=Archive(series(6)), extra_collections=EXTRA)


def _ids(fed: LiveFederation, **params: Any) -> list[str]:
    r = httpx.get(f"{fed.url}/collections", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberReturned"] == len(body["collections"])
    return [c["id"] for c in body["collections"]]


def test_free_text_terms_match_id_title_description_or_keywords(fed: LiveFederation) -> None:
    assert _ids(fed, q="atmosphere") == ["s5p-no2"]  # keyword
    assert _ids(fed, q="Nitrogen") == ["s5p-no2"]  # description, any case
    assert _ids(fed, q="alpine,NO2") == ["s5p-no2", "alps-snow"]  # terms are OR'd
    assert _ids(fed, q="sentinel-2") == ["sentinel-2-l1c", "sentinel-2-l2a"]  # id
    assert _ids(fed, q="nothing-like-this") == []


def test_bbox_selects_collections_whose_extent_intersects_it(fed: LiveFederation) -> None:
    czechia = [*UNKNOWN, "sentinel-2-l2a", "s5p-no2"]
    assert _ids(fed, bbox="15.5,49.8,15.6,49.9") == czechia
    assert _ids(fed, bbox="15.5,49.8,0,15.6,49.9,100") == czechia  # 3D
    assert _ids(fed, bbox="6,45,7,46") == [*UNKNOWN, "s5p-no2", "alps-snow"]  # the Alps
    assert _ids(fed, bbox="170,-10,-170,10") == [*UNKNOWN, "s5p-no2"]  # across the antimeridian


def test_datetime_selects_collections_whose_interval_overlaps_it(fed: LiveFederation) -> None:
    assert _ids(fed, datetime="2020-06-01T00:00:00Z") == [*UNKNOWN, "s5p-no2", "alps-snow"]
    assert _ids(fed, datetime="../2019-01-01T00:00:00Z") == [*UNKNOWN, "s5p-no2"]
    assert _ids(fed, datetime="2021-10-20T00:00:00Z/..") == [*SENTINEL, "s5p-no2"]
    assert _ids(fed, datetime="2021-10-25T00:00:00Z/..") == [*UNKNOWN, "s5p-no2"]  # l2a ended
    assert _ids(fed, datetime="2020-12-31T00:00:00Z/2021-01-02T00:00:00Z") == [
        *UNKNOWN,
        "s5p-no2",
        "alps-snow",
    ]


def test_criteria_combine(fed: LiveFederation) -> None:
    assert _ids(fed, q="l2a,no2,snow", bbox="15,49,16,50") == ["sentinel-2-l2a", "s5p-no2"]
    assert _ids(fed, q="l2a,no2,snow", bbox="6,45,7,46", datetime="2019-06-01T00:00:00Z") == [
        "s5p-no2"
    ]


def test_limit_pages_through_every_match_with_next_links(fed: LiveFederation) -> None:
    url: str | None = f"{fed.url}/collections?limit=4&q=sentinel"
    seen, pages = [], 0
    while url:
        body = httpx.get(url).json()
        assert body["numberMatched"] == 5 and len(body["collections"]) <= 4
        seen += [c["id"] for c in body["collections"]]
        url = next((ln["href"] for ln in body["links"] if ln["rel"] == "next"), None)
        pages += 1
    assert pages == 2
    assert seen == [*SENTINEL, "s5p-no2"]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"bbox": "1,2,3"}, id="bbox-3-numbers"),
        pytest.param({"bbox": "10,50,20,40"}, id="bbox-south-above-north"),
        pytest.param({"datetime": "yesterday"}, id="datetime-not-rfc3339"),
        pytest.param({"datetime": "../.."}, id="datetime-both-open"),
        pytest.param({"limit": "0"}, id="limit-0"),
        pytest.param({"limit": "many"}, id="limit-not-int"),
        pytest.param({"token": "x1"}, id="token-forged"),
        pytest.param({"q": ",".join(f"t{i}" for i in range(30))}, id="q-too-many-terms"),
    ],
)
def test_bad_parameters_are_400_with_a_stac_error(
    fed: LiveFederation, params: dict[str, str]
) -> None:
    r = httpx.get(f"{fed.url}/collections", params=params)
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"code", "description"} and body["description"]


def test_pystac_client_finds_collections_by_collection_search(fed: LiveFederation) -> None:
    client = Client.open(fed.url)
    assert client.conforms_to(ConformanceClasses.COLLECTION_SEARCH)
    assert client.conforms_to(ConformanceClasses.COLLECTION_SEARCH_FREE_TEXT)
    search = client.collection_search(q="snow,atmosphere", bbox=[6, 45, 7, 46], limit=1)
    assert [c.id for c in search.collections()] == ["s5p-no2", "alps-snow"]  # over 2 pages
    found = client.collection_search(datetime="2021-10-01/2021-10-31", q="sentinel-1")
    assert [c.id for c in found.collections()] == ["sentinel-1-grd", "sentinel-1-slc"]


def _doc(bbox: list[float], interval: list[str | None], **text: Any) -> dict[str, Any]:
    return {
        "id": "c",
        **text,
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}},
    }


@pytest.mark.parametrize(
    ("doc", "params", "expected"),
    [
        pytest.param(_doc([0, 0, 1, 1], [None, None]), {"bbox": "1,1,2,2"}, True, id="touching"),
        pytest.param(_doc([170, 0, -170, 1], [None, None]), {"bbox": "175,0,176,1"}, True,
                     id="antimeridian-extent"),
        pytest.param(_doc([170, 0, -170, 1], [None, None]), {"bbox": "0,0,1,1"}, False,
                     id="antimeridian-extent-elsewhere"),
        pytest.param(_doc([0, 0, -10, 1, 1, 10], [None, None]), {"bbox": "0.5,0.5,0.6,0.6"},
                     True, id="3d-extent"),
        pytest.param(_doc([0, 0, -10, 1, 1, 10], [None, None]), {"bbox": "0.5,5,0.6,6"}, False,
                     id="3d-extent-heights-are-not-latitudes"),
        pytest.param(_doc([0, 0, 1, 1], ["2020-01-01T00:00:00Z", None]),
                     {"datetime": "2030-01-01T00:00:00Z"}, True, id="open-end"),
        pytest.param(_doc([0, 0, 1, 1], [None, "2020-01-01T00:00:00Z"]),
                     {"datetime": "2020-01-01T00:00:01Z/.."}, False, id="ended-before"),
        pytest.param(_doc([0, 0, 1, 1], [None, None], keywords=["Snow"]), {"q": "sNoW"}, True,
                     id="keyword-any-case"),
        pytest.param(_doc([0, 0, 1, 1], [None, None], title="x"), {"q": " ,  , "}, True,
                     id="blank-q-is-no-criterion"),
    ],
)  # fmt: skip
def test_matches(doc: dict[str, Any], params: dict[str, str], expected: bool) -> None:
    assert matches(doc, parse_collection_query(params, 1000)) is expected


def test_limit_default_100_capped_at_max_limit_and_tokens_are_offsets() -> None:
    assert parse_collection_query({}, 1000) == CollectionQuery(limit=100)
    assert parse_collection_query({}, 10).limit == 10
    assert parse_collection_query({"limit": "5000"}, 1000).limit == 1000
    assert parse_collection_query({"token": "4"}, 1000).offset == 4
    for token in ("-1", "\u00b2", "1e3", "9" * 12):
        with pytest.raises(InvalidRequest):
            parse_collection_query({"token": token}, 1000)


def test_collection_search_declares_that_it_sorts_by_nothing(fed: LiveFederation) -> None:
    answer = httpx.get(f"{fed.url}/collections-sortables")
    assert answer.status_code == 200
    schema = answer.json()
    assert schema["$id"] == f"{fed.url}/collections-sortables"  # the gateway's, not example.org
    assert schema["properties"] == {} and schema["additionalProperties"] is False
