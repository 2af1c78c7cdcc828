"""Deleted products over real HTTP: the background sync, search, ``/deletions`` and the CLI.

A DHuS mirror (``cesnet``) and CDSE (``cdse``) hold the same Sentinel-2 products. Products are
then withdrawn upstream, in the emulators, with real cause strings; the gateway learns it from
their ``DeletedProducts`` feeds.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from conftest import Archive, LiveFederation, MakeFederation
from factories import BASE_TIME, s2_item, s2_name

from mqs.cli import main

REDIS = "redis://127.0.0.1:6379/0"
DAY = datetime(2021, 11, 2, 8, 15, tzinfo=UTC)
OLD = s2_name(BASE_TIME)  # baseline N0301 ...
NEW = s2_name(BASE_TIME, baseline="N0500")  # ... reprocessed: same datatake and tile
TIMES = [BASE_TIME - timedelta(days=i) for i in range(1, 5)]
OTHERS = [s2_name(t) for t in TIMES]
ITEMS = [s2_item(OLD, BASE_TIME), s2_item(NEW, BASE_TIME)]
ITEMS += [s2_item(n, t) for n, t in zip(OTHERS, TIMES, strict=True)]
CORRUPT, EVICTED = OTHERS[0], OTHERS[1]


def _search(fed: LiveFederation, **params: Any) -> httpx.Response:
    query = {"collections": "sentinel-2-l2a", "limit": "50"} | params
    return httpx.get(f"{fed.url}/search", params=query, timeout=30)


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [f["id"] for f in response.json()["features"]]


def _withdraw(fed: LiveFederation) -> None:
    fed.emulators["cdse"].state.deleted.delete(
        OLD, "Obsolete: replaced by 0reprocessed product", DAY
    )
    cesnet = fed.emulators["cesnet"].state.deleted
    cesnet.delete(CORRUPT, "Corrupted products", DAY + timedelta(hours=1))
    cesnet.delete(EVICTED, "Automatic Eviction", DAY + timedelta(hours=2))


@pytest.fixture(scope="module")
def fed(make_module_federation: MakeFederation) -> LiveFederation:
    federation = make_module_federation(
        server={"deletions": {"enabled": True, "sync_interval_s": 0.2}},
        cesnet=Archive(ITEMS, kind="dhus", priority=8),
        cdse=Archive(ITEMS, kind="cdse-odata", priority=6),
    )
    before = _ids(_search(federation))
    assert OLD in before and CORRUPT in before
    _withdraw(federation)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the next background sync reads the feeds
        if httpx.get(f"{federation.url}/deletions").json()["counts"]["total"] == 3:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the background sync did not record the deletions")
    return federation


def test_withdrawn_products_disappear_from_search(fed: LiveFederation) -> None:
    response = _search(fed)
    found = _ids(response)
    # OLD is still listed by the mirror (cesnet): withdrawn all the same (cdse withdrew it)
    assert OLD not in found and CORRUPT not in found
    assert NEW in found
    assert EVICTED in found  # an eviction moves one copy to long-term archive: still valid
    assert "numberMatched" not in response.json()


def test_withdrawn_products_are_flagged_on_request(fed: LiveFederation) -> None:
    items = f"{fed.url}/collections/sentinel-2-l2a/items"
    for response in (
        _search(fed, deleted="include"),
        httpx.get(items, params={"limit": 50, "deleted": "include"}, timeout=30),
        httpx.post(
            f"{fed.url}/search",
            json={"collections": ["sentinel-2-l2a"], "limit": 50, "deleted": "include"},
            timeout=30,
        ),
    ):
        features = {f["id"]: f for f in response.json()["features"]}
        assert {OLD, NEW, CORRUPT, EVICTED} <= set(features)
        old = features[OLD]["properties"]
        assert old["deprecated"] is True
        assert old["mqs:deletion"] == {
            "cause": "Obsolete: replaced by 0reprocessed product",
            "class": "replaced-by-reprocessing",
            "date": "2021-11-02T08:15:00.000Z",
            "backends": ["cdse"],
        }
        successor = [link for link in features[OLD]["links"] if link["rel"] == "successor-version"]
        assert [link["href"] for link in successor] == [
            f"{fed.url}/collections/sentinel-2-l2a/items/{NEW}"
        ]
        assert features[CORRUPT]["properties"]["mqs:deletion"]["class"] == "corrupted"
        assert "deprecated" not in features[NEW]["properties"]
        assert "deprecated" not in features[EVICTED]["properties"]


def test_a_successor_on_another_page_is_found(fed: LiveFederation) -> None:
    page = _search(fed, deleted="include", limit="1").json()
    [old] = page["features"]  # OLD sorts before NEW (same datetime): NEW is on the next page
    assert old["id"] == OLD
    successor = [link["href"] for link in old["links"] if link["rel"] == "successor-version"]
    assert successor == [f"{fed.url}/collections/sentinel-2-l2a/items/{NEW}"]


def test_a_withdrawn_item_asked_for_by_id_is_flagged(fed: LiveFederation) -> None:
    response = httpx.get(f"{fed.url}/collections/sentinel-2-l2a/items/{OLD}", timeout=30)
    assert response.status_code == 200  # the mirror still serves it: flagged, not hidden
    properties = response.json()["properties"]
    assert properties["deprecated"] is True
    assert properties["mqs:deletion"]["class"] == "replaced-by-reprocessing"
    fresh = httpx.get(f"{fed.url}/collections/sentinel-2-l2a/items/{NEW}", timeout=30).json()
    assert "deprecated" not in fresh["properties"]


def test_an_unknown_deleted_mode_is_a_400(fed: LiveFederation) -> None:
    response = _search(fed, deleted="hide")
    assert response.status_code == 400
    assert "deleted must be" in response.json()["description"]


def test_deletions_report_counts_and_lists(fed: LiveFederation) -> None:
    body = httpx.get(f"{fed.url}/deletions").json()
    assert body["counts"] == {
        "total": 3,
        "by_class": {"corrupted": 1, "eviction-to-lta": 1, "replaced-by-reprocessing": 1},
        "by_backend": {
            "cdse": {"total": 1, "by_class": {"replaced-by-reprocessing": 1}},
            "cesnet": {"total": 2, "by_class": {"corrupted": 1, "eviction-to-lta": 1}},
        },
    }
    assert [(d["product"], d["backend"]) for d in body["deletions"]] == [
        (EVICTED, "cesnet"),
        (CORRUPT, "cesnet"),
        (OLD, "cdse"),
    ]  # newest first
    assert body["deletions"][1] == {
        "product": CORRUPT,
        "backend": "cesnet",
        "date": "2021-11-02T09:15:00.000Z",
        "cause": "Corrupted products",
        "class": "corrupted",
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"backend": "cdse"}, [OLD]),
        ({"class": "corrupted,eviction-to-lta"}, [EVICTED, CORRUPT]),
        ({"class": ["corrupted", "replaced-by-reprocessing"]}, [CORRUPT, OLD]),
        ({"since": "2021-11-02T09:15:00Z"}, [EVICTED, CORRUPT]),
        ({"until": "2021-11-02T09:15:00Z"}, [OLD]),
        ({"backend": "cesnet", "until": "2021-11-02T10:00:00Z"}, [CORRUPT]),
    ],
)
def test_deletions_filters(
    fed: LiveFederation, params: dict[str, Any], expected: list[str]
) -> None:
    body = httpx.get(f"{fed.url}/deletions", params=params).json()
    assert [d["product"] for d in body["deletions"]] == expected
    assert body["counts"]["total"] == body["numberMatched"] == len(expected)


def test_deletions_pages(fed: LiveFederation) -> None:
    first = httpx.get(f"{fed.url}/deletions", params={"limit": 2}).json()
    assert first["numberReturned"] == 2 and first["counts"]["total"] == 3
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = httpx.get(following).json()
    assert [d["product"] for d in second["deletions"]] == [OLD]
    assert not [link for link in second["links"] if link["rel"] == "next"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"class": "broken"}, "unknown class"),
        ({"backend": "nowhere"}, "unknown backend"),
        ({"since": "yesterday"}, "invalid datetime"),
        ({"limit": "0"}, "limit must be"),
        ({"offset": "-1"}, "offset must be"),
        ({"offset": "100001"}, "offset must be an integer from 0 to 100000"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "invalid datetime"),  # out of range in UTC
    ],
)
def test_deletions_bad_input_is_a_400(
    fed: LiveFederation, params: dict[str, str], message: str
) -> None:
    response = httpx.get(f"{fed.url}/deletions", params=params)
    assert response.status_code == 400
    assert message in response.json()["description"] and response.json()["code"]


def test_cli_sync_and_list_share_the_registry_in_redis(
    make_federation: MakeFederation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"mqs-test:{uuid.uuid4().hex}:"
    cache = {"url": REDIS}
    server = {"deletions": {"store_prefix": prefix}}  # no background sync: the CLI syncs
    fed = make_federation(
        server=server,
        cache=cache,
        cesnet=Archive(ITEMS, kind="dhus"),
        cdse=Archive(ITEMS, kind="cdse-odata"),
    )
    config = tmp_path / "federation.yaml"
    config.write_text(yaml.safe_dump(fed.config.model_dump(mode="json")))
    try:
        _withdraw(fed)
        assert main(["deletions", "sync", "--config", str(config)]) == 0
        first = capsys.readouterr().out.splitlines()
        assert len(first) == 2 and '"new":1' in first[0] and '"new":2' in first[1]
        assert main(["deletions", "sync", "--config", str(config)]) == 0
        assert all('"new":0' in line for line in capsys.readouterr().out.splitlines())
        # the gateway reads the registry the CLI wrote
        assert OLD not in _ids(_search(fed))
        args = ["deletions", "list", "--config", str(config), "--cause", "corrupted"]
        assert main(args) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines == [
            "product\tbackend\tdate\tclass\tcause",
            f"{CORRUPT}\tcesnet\t2021-11-02T09:15:00.000Z\tcorrupted\tCorrupted products",
        ]
        assert main(["deletions", "list", "--config", str(config), "--cause", "nonsense"]) != 0
    finally:
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def _wait_for(url: str, total: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body: dict[str, Any] = httpx.get(f"{url}/deletions").json()
        if body.get("counts", {}).get("total") == total:
            return body
        time.sleep(0.1)
    pytest.fail("the background sync did not record the deletions")


def test_what_a_user_may_not_see_stays_hidden(make_federation: MakeFederation) -> None:
    issuer = [{"url": "https://issuer.invalid"}]  # anonymous requests never reach it
    fed = make_federation(
        server={"deletions": {"enabled": True, "sync_interval_s": 0.2}},
        auth={"issuers": issuer, "backends": {"cdse": {"entitlements": ["urn:x:cdse"]}}},
        cesnet=Archive(ITEMS, kind="dhus", priority=8),
        cdse=Archive(ITEMS, kind="cdse-odata", priority=6),
    )
    _withdraw(fed)
    body = _wait_for(fed.url, 2)  # cesnet's two; cdse's deletion is not shown to this user
    assert list(body["counts"]["by_backend"]) == ["cesnet"]
    assert httpx.get(f"{fed.url}/deletions", params={"backend": "cdse"}).status_code == 400
    # only cdse withdrew OLD: for a user who may not see cdse, OLD is a plain product
    found = {f["id"]: f for f in _search(fed, deleted="include").json()["features"]}
    assert OLD in found and "deprecated" not in found[OLD]["properties"]
    assert CORRUPT not in found  # cesnet withdrew its copy; the other is cdse's, not shown


def test_the_report_needs_access_to_every_collection(make_federation: MakeFederation) -> None:
    issuer = [{"url": "https://issuer.invalid"}]
    rules = {"sentinel-1-grd": {"entitlements": ["urn:x:s1"]}}
    fed = make_federation(
        auth={"issuers": issuer, "collections": rules}, cdse=Archive(ITEMS, kind="cdse-odata")
    )
    response = httpx.get(f"{fed.url}/deletions")
    assert response.status_code in (401, 403)
    assert response.json()["code"] and "covers every collection" in response.json()["description"]
