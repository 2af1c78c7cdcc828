"""The page cache (``cache.page_ttl_s``): repeated identical searches skip the federation.

Live gateway and STAC emulators on loopback; the emulators' own request counters show whether
a search reached the backends.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series

from adapters.faults import Faults

S2 = series(12)
PAGES = {"page_ttl_s": 60}


def _backend_requests(fed: LiveFederation) -> int:
    return sum(int(e.state.requests) for e in fed.emulators.values())


def _get(fed: LiveFederation, path: str = "/search", **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{fed.url}{path}", timeout=30, **kwargs)


@pytest.fixture(scope="module")
def cached(make_module_federation: MakeFederation) -> LiveFederation:
    return make_module_federation(
        a=Archive(S2[0::2], priority=2), b=Archive(S2[1::2], priority=1), cache=PAGES
    )


def test_a_repeated_search_is_answered_from_the_cache(cached: LiveFederation) -> None:
    params = {"collections": "sentinel-2-l2a", "limit": 3}
    first = _get(cached, params=params)
    asked = _backend_requests(cached)
    again = _get(cached, params=params)

    assert first.status_code == again.status_code == 200
    assert "x-mqs-cache" not in first.headers and again.headers["x-mqs-cache"] == "hit"
    assert again.content == first.content
    assert _backend_requests(cached) == asked  # no backend was asked again
    # its next link still pages on: a new page is a new search page, asked of the backends
    link = next(li["href"] for li in again.json()["links"] if li["rel"] == "next")
    second = httpx.get(link, timeout=30)
    assert second.status_code == 200 and "x-mqs-cache" not in second.headers
    assert _backend_requests(cached) > asked


def test_post_and_item_pages_are_cached_per_body_and_path(cached: LiveFederation) -> None:
    body = {"collections": ["sentinel-2-l2a"], "limit": 2}
    first = httpx.post(f"{cached.url}/search", json=body, timeout=30)
    again = httpx.post(f"{cached.url}/search", json=body, timeout=30)
    other = httpx.post(f"{cached.url}/search", json=body | {"limit": 4}, timeout=30)
    assert again.headers.get("x-mqs-cache") == "hit" and again.content == first.content
    assert "x-mqs-cache" not in other.headers and len(other.json()["features"]) == 4

    path = "/collections/sentinel-2-l2a/items"
    _get(cached, path, params={"limit": 2})
    assert _get(cached, path, params={"limit": 2}).headers.get("x-mqs-cache") == "hit"


def test_the_key_holds_every_header(cached: LiveFederation) -> None:
    # a different Authorization (another user) or Host (other links) is another page
    params = {"limit": 5}
    _get(cached, params=params, headers={"Authorization": "Bearer one"})
    hit = _get(cached, params=params, headers={"Authorization": "Bearer one"})
    other_user = _get(cached, params=params, headers={"Authorization": "Bearer two"})
    other_host = _get(cached, params=params, headers={"Host": "mqs.example.org"})
    assert hit.headers.get("x-mqs-cache") == "hit"
    assert "x-mqs-cache" not in other_user.headers
    assert "x-mqs-cache" not in other_host.headers
    assert other_host.json()["links"][0]["href"].startswith("http://mqs.example.org/")


def test_errors_are_not_cached(cached: LiveFederation) -> None:
    bad = {"bbox": "1,2,3"}
    assert _get(cached, params=bad).status_code == 400
    again = _get(cached, params=bad)
    assert again.status_code == 400 and "x-mqs-cache" not in again.headers


def test_a_page_with_a_failed_backend_is_not_repeated(make_federation: MakeFederation) -> None:
    faults = Faults()
    faults.set("status", status=500, times=1)  # not retried: the page misses b
    fed = make_federation(a=Archive(S2[0::2]), b=Archive(S2[1::2], faults=faults), cache=PAGES)
    degraded = _get(fed, params={"limit": 4})
    assert degraded.headers.get("x-mqs-missing") == "b"
    recovered = _get(fed, params={"limit": 4})  # asked again: b answers now
    assert "x-mqs-cache" not in recovered.headers and "x-mqs-missing" not in recovered.headers
    assert _get(fed, params={"limit": 4}).headers.get("x-mqs-cache") == "hit"


def test_off_by_default(make_federation: MakeFederation) -> None:
    fed = make_federation(a=Archive(S2))
    _get(fed, params={"limit": 2})
    asked = _backend_requests(fed)
    assert "x-mqs-cache" not in _get(fed, params={"limit": 2}).headers
    assert _backend_requests(fed) > asked


def _concurrently(fed: LiveFederation, count: int, **kwargs: Any) -> list[httpx.Response]:
    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(client.get(f"{fed.url}/search", **kwargs) for _ in range(count))
                )
            )

    return asyncio.run(ask())


def test_identical_searches_in_flight_are_answered_once(make_federation: MakeFederation) -> None:
    # the page cache is off: only searches arriving while the first is computed are shared
    faults = Faults()
    faults.set("slow", delay_s=0.5)
    fed = make_federation(a=Archive(S2[0::2]), b=Archive(S2[1::2], faults=faults))
    answers = _concurrently(fed, 6, params={"limit": 4})

    marks = sorted(r.headers.get("x-mqs-cache", "-") for r in answers)
    assert marks == ["-", *["coalesced"] * 5]
    assert {r.content for r in answers} == {answers[0].content}
    assert all(r.status_code == 200 and len(r.json()["features"]) == 4 for r in answers)
    assert len({r.headers["x-request-id"] for r in answers}) == 6  # each request is its own
    later = _get(fed, params={"limit": 4})  # nothing is kept once the flight has landed
    assert "x-mqs-cache" not in later.headers


def test_only_identical_requests_share_a_flight(make_federation: MakeFederation) -> None:
    faults = Faults()
    faults.set("slow", delay_s=0.5)
    fed = make_federation(a=Archive(S2[0::2]), b=Archive(S2[1::2], faults=faults))

    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            url = f"{fed.url}/search"
            return list(
                await asyncio.gather(
                    client.get(url, params={"limit": 4}, headers={"Authorization": "Bearer a"}),
                    client.get(url, params={"limit": 4}, headers={"Authorization": "Bearer b"}),
                    client.get(url, params={"limit": 3}, headers={"Authorization": "Bearer a"}),
                )
            )

    assert all("x-mqs-cache" not in r.headers for r in asyncio.run(ask()))


def test_a_degraded_page_is_not_shared(make_federation: MakeFederation) -> None:
    faults = Faults()
    faults.set("status", status=500, times=1, delay_s=0.5)  # the first request to b fails
    slow = Faults()
    slow.set("slow", delay_s=0.5)
    fed = make_federation(a=Archive(S2[0::2], faults=slow), b=Archive(S2[1::2], faults=faults))
    answers = _concurrently(fed, 4, params={"limit": 4})

    assert all(r.status_code == 200 and "x-mqs-cache" not in r.headers for r in answers)
    assert sum("x-mqs-missing" in r.headers for r in answers) >= 1


def test_coalescing_can_be_turned_off(make_federation: MakeFederation) -> None:
    faults = Faults()
    faults.set("slow", delay_s=0.5)
    fed = make_federation(
        a=Archive(S2[0::2]), b=Archive(S2[1::2], faults=faults), cache={"coalesce_pages": False}
    )
    answers = _concurrently(fed, 4, params={"limit": 4})
    assert all(r.status_code == 200 and "x-mqs-cache" not in r.headers for r in answers)
