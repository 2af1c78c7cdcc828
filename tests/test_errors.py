"""Bad input gets a 4xx with a STAC error body; nothing crashes, nothing leaks."""

from __future__ import annotations

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series


@pytest.fixture
def fed(make_federation: MakeFederation) -> LiveFederation:
    return make_federation(a=Archive(series(4)), b=Archive(series(6)[2:]))


def _assert_stac_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"code", "description"}
    assert isinstance(body["code"], str) and body["code"]
    assert words.lower() in body["description"].lower(), body["description"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("params", "words"),
    [
        pytest.param({"bbox": "1,2,3"}, "bbox", id="bbox-3-values"),
        pytest.param({"bbox": "a,b,c,d"}, "bbox", id="bbox-not-numbers"),
        pytest.param({"bbox": "0,50,10,40"}, "bbox", id="bbox-south-above-north"),
        pytest.param({"bbox": "0,-95,10,40"}, "bbox", id="bbox-latitude-range"),
        pytest.param({"bbox": "0,0,1,nan"}, "bbox", id="bbox-nan"),
        pytest.param({"datetime": "2021-13-01T00:00:00Z"}, "datetime", id="datetime-month-13"),
        pytest.param({"datetime": "yesterday"}, "datetime", id="datetime-word"),
        pytest.param({"datetime": "../.."}, "datetime", id="datetime-both-open"),
        pytest.param(
            {"datetime": "2021-10-02T00:00:00Z/2021-10-01T00:00:00Z"},
            "datetime",
            id="datetime-reversed",
        ),
        pytest.param({"limit": "0"}, "limit", id="limit-zero"),
        pytest.param({"limit": "-5"}, "limit", id="limit-negative"),
        pytest.param({"limit": "ten"}, "limit", id="limit-word"),
        pytest.param({"collections": "sentinel-9"}, "sentinel-9", id="unknown-collection"),
        pytest.param({"intersects": "{not json"}, "intersects", id="intersects-not-json"),
        pytest.param(
            {"intersects": '{"type":"Point","coordinates":[500,0]}'},
            "intersects",
            id="intersects-out-of-range",
        ),
        pytest.param(
            {"bbox": "0,0,1,1", "intersects": '{"type":"Point","coordinates":[0,0]}'},
            "exclusive",
            id="bbox-and-intersects",
        ),
        pytest.param({"token": "garbage"}, "token", id="garbage-token"),
    ],
)
def test_get_search_rejects_bad_input(
    fed: LiveFederation, params: dict[str, str], words: str
) -> None:
    _assert_stac_error(httpx.get(f"{fed.url}/search", params=params), 400, words)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({"bbox": [1, 2]}, "bbox", id="bbox-2-values"),
        pytest.param({"bbox": [0, 50, 10, 40]}, "bbox", id="bbox-south-above-north"),
        pytest.param({"limit": 0}, "limit", id="limit-zero"),
        pytest.param({"limit": "many"}, "limit", id="limit-word"),
        pytest.param(
            {"datetime": "2021-10-01"}, "datetime", id="datetime-date-only-is-not-rfc3339"
        ),
        pytest.param({"collections": ["nope"]}, "nope", id="unknown-collection"),
        pytest.param(
            {"intersects": {"type": "Polygon", "coordinates": [[[0, 0]]]}},
            "intersects",
            id="bad-polygon",
        ),
    ],
)
def test_post_search_rejects_bad_input(
    fed: LiveFederation, body: dict[str, object], words: str
) -> None:
    _assert_stac_error(httpx.post(f"{fed.url}/search", json=body), 400, words)


def test_post_search_rejects_non_json(fed: LiveFederation) -> None:
    response = httpx.post(
        f"{fed.url}/search", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    _assert_stac_error(response, 400, "invalid")


def test_limit_above_maximum_is_capped(make_federation: MakeFederation) -> None:
    fed = make_federation(server={"max_limit": 3, "default_limit": 2}, a=Archive(series(5)))
    page = httpx.get(f"{fed.url}/search", params={"limit": 50}).json()
    assert page["numberReturned"] == 3


def test_unknown_item_is_404(fed: LiveFederation) -> None:
    name = "S2A_MSIL2A_20000101T000000_N0000_R000_T00XXX_20000101T000000"
    url = f"{fed.url}/collections/sentinel-2-l2a/items/{name}"
    _assert_stac_error(httpx.get(url), 404, "not found")


def test_unknown_collection_is_404(fed: LiveFederation) -> None:
    _assert_stac_error(httpx.get(f"{fed.url}/collections/sentinel-9"), 404, "not found")
    _assert_stac_error(httpx.get(f"{fed.url}/collections/sentinel-9/items"), 404, "not found")
    _assert_stac_error(httpx.get(f"{fed.url}/collections/sentinel-9/items/x"), 404, "not found")


def test_unknown_path_is_404_with_stac_body(fed: LiveFederation) -> None:
    _assert_stac_error(httpx.get(f"{fed.url}/nothing/here"), 404, "not found")


def test_tampered_token_is_400(fed: LiveFederation) -> None:
    page = httpx.get(f"{fed.url}/search", params={"limit": 2}).json()
    href = next(ln["href"] for ln in page["links"] if ln["rel"] == "next")
    token = httpx.URL(href).params["token"]
    version, body, mac = token.split(".")
    forged = f"{version}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{mac}"
    _assert_stac_error(
        httpx.get(f"{fed.url}/search", params={"limit": 2, "token": forged}), 400, "token"
    )


def test_token_of_another_search_is_400(fed: LiveFederation) -> None:
    page = httpx.get(f"{fed.url}/search", params={"limit": 2}).json()
    token = httpx.URL(next(ln["href"] for ln in page["links"] if ln["rel"] == "next")).params[
        "token"
    ]
    other = {"limit": 2, "bbox": "15,49,16,50", "token": token}
    _assert_stac_error(httpx.get(f"{fed.url}/search", params=other), 400, "different search")


def test_one_backend_down_is_reported_not_fatal(make_federation: MakeFederation) -> None:
    fed = make_federation(a=Archive(series(3)), b=Archive(series(3), down=True))
    page = httpx.get(f"{fed.url}/search").json()
    assert page["numberReturned"] == 3
    assert page["federation:missing"] == ["b"]


def test_all_backends_down_is_502_with_report(make_federation: MakeFederation) -> None:
    fed = make_federation(a=Archive([], down=True), b=Archive([], down=True))
    response = httpx.get(f"{fed.url}/search")
    _assert_stac_error(response, 502, "no backend")
    assert response.json()["federation:backends"] == {"a": "unavailable", "b": "unavailable"}
    item = httpx.get(f"{fed.url}/collections/sentinel-2-l2a/items/S2A_X")
    _assert_stac_error(item, 502, "no backend")
