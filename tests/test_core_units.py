"""Pure parts of the core: query parsing, product identity, paging tokens, cache."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from mqs.cache import MemoryCache, RedisCache
from mqs.errors import InvalidRequest
from mqs.identity import product_name, product_name_of_item
from mqs.paging import Cursor, Position, TokenCodec
from mqs.query import build_query, parse_datetime

KNOWN = {"sentinel-2-l2a": {}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-10-01T00:00:00Z", (datetime(2021, 10, 1, tzinfo=UTC),) * 2),
        ("2021-10-01T02:00:00+02:00", (datetime(2021, 10, 1, tzinfo=UTC),) * 2),
        ("2021-10-01T00:00:00Z/..", (datetime(2021, 10, 1, tzinfo=UTC), None)),
        ("/2021-10-01T00:00:00Z", (None, datetime(2021, 10, 1, tzinfo=UTC))),
        (
            "2021-10-01T00:00:00.5Z/2021-10-02T00:00:00Z",
            (datetime(2021, 10, 1, 0, 0, 0, 500000, tzinfo=UTC), datetime(2021, 10, 2, tzinfo=UTC)),
        ),
    ],
)
def test_datetime_forms(text: str, expected: tuple[datetime | None, datetime | None]) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2021-10-01T00:00:00",
        "a/b/c",
        "../..",
        "2021-10-01T25:00:00Z",
        "1985-04-12",
        "1937-01-01T12:00:27.87+0100",
        "1985-04-12T23:20:50.Z",
        "1985-04-12T23:20:50,52Z",
    ],
)
def test_datetime_rejects(text: str) -> None:
    with pytest.raises(InvalidRequest, match="datetime"):
        parse_datetime(text)


def test_antimeridian_bbox_is_two_boxes() -> None:
    query = build_query({"bbox": [170, -10, -170, 10]}, KNOWN, 10, 100)
    assert query.geometry is not None and query.geometry.geom_type == "MultiPolygon"
    assert query.geometry.contains(build_query({"bbox": "175,0,176,1"}, KNOWN, 10, 100).geometry)


def test_ids_are_deduplicated_and_bounded() -> None:
    assert build_query({"ids": "a,b,a"}, KNOWN, 10, 100).ids == ("a", "b")
    with pytest.raises(InvalidRequest, match="ids"):
        build_query({"ids": [str(i) for i in range(1001)]}, KNOWN, 10, 100)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "S2A_MSIL2A_20211024T095101_N0301_R079_T33UXQ_20211024T122307.SAFE",
            "S2A_MSIL2A_20211024T095101_N0301_R079_T33UXQ_20211024T122307",
        ),
        (
            "S1A_IW_GRDH_1SDV_20211024T165013_20211024T165038_040257_04C4D6_7F1B.zip",
            "S1A_IW_GRDH_1SDV_20211024T165013_20211024T165038_040257_04C4D6_7F1B",
        ),
        (
            "S3A_OL_1_EFR____20211024T093012_20211024T093312_20211025T140101_0179_077_307_2160_LN1_O_NT_002.SEN3",
            "S3A_OL_1_EFR____20211024T093012_20211024T093312_20211025T140101_0179_077_307_2160_LN1_O_NT_002",
        ),
        (
            "s3://bucket/path/S2B_MSIL1C_20211024T095101_N0301_R079_T33UXQ_20211024T112307.SAFE",
            "S2B_MSIL1C_20211024T095101_N0301_R079_T33UXQ_20211024T112307",
        ),
    ],
)
def test_product_name(name: str, expected: str) -> None:
    assert product_name(name) == expected


def test_different_baselines_and_discriminators_stay_different_products() -> None:
    base = "S2A_MSIL2A_20211024T095101_N0301_R079_T33UXQ_20211024T122307"
    other_baseline = base.replace("N0301", "N0500")
    other_disc = base.replace("T122307", "T130000")
    names = {
        product_name_of_item({"id": n, "properties": {}})
        for n in (base, other_baseline, other_disc)
    }
    assert len(names) == 3


def _position() -> Position:
    return Position(["2021-10-24T09:51:01.024Z"], "S2A_X", {"a": Cursor({"m": "GET", "h": "u"}, 3)})


def test_token_round_trip_across_instances() -> None:
    one = TokenCodec(b"shared", "cfg", 60)
    two = TokenCodec(b"shared", "cfg", 60)
    token = one.encode(_position(), {"q": 1})
    assert two.decode(token, {"q": 1}) == _position()


@pytest.mark.parametrize(
    ("codec", "search", "message"),
    [
        (TokenCodec(b"other", "cfg", 60), {"q": 1}, "signature"),
        (TokenCodec(b"shared", "changed-config", 60), {"q": 1}, "another configuration"),
        (TokenCodec(b"shared", "cfg", -1), {"q": 1}, "expired"),
        (TokenCodec(b"shared", "cfg", 60), {"q": 2}, "different search"),
    ],
)
def test_foreign_tokens_are_refused(
    codec: TokenCodec, search: dict[str, int], message: str
) -> None:
    token = TokenCodec(b"shared", "cfg", 60).encode(_position(), {"q": 1})
    with pytest.raises(InvalidRequest, match=message):
        codec.decode(token, search)


@pytest.mark.parametrize("token", ["", "m1", "m1.x.y", "m2.abc.def", "m1." + "A" * 20000 + ".x"])
def test_garbage_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidRequest, match="token"):
        TokenCodec(b"shared", "cfg", 60).decode(token, {})


async def test_memory_cache_expires_and_is_bounded() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", b"1", 0.05)
    await cache.set("b", b"2", 60)
    await cache.set("c", b"3", 60)
    assert await cache.get("a") is None  # evicted (oldest)
    assert await cache.get("b") == b"2"
    await cache.set("d", b"4", 0.01)
    time.sleep(0.02)
    assert await cache.get("d") is None


async def test_redis_cache_shares_values_between_instances() -> None:
    one, two = (
        RedisCache("redis://127.0.0.1:6379/0", prefix="mqs-test:"),
        RedisCache("redis://127.0.0.1:6379/0", prefix="mqs-test:"),
    )
    try:
        key = f"k{time.time_ns()}"
        await one.set(key, b"value", 5)
        assert await two.get(key) == b"value"
    finally:
        await one.close()
        await two.close()


async def test_redis_down_is_a_miss_not_an_error() -> None:
    cache = RedisCache("redis://127.0.0.1:9/0")
    try:
        await cache.set("k", b"v", 5)
        assert await asyncio.wait_for(cache.get("k"), 5) is None
    finally:
        await cache.close()
