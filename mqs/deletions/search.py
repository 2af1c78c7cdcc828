"""Deleted products in search results: left out by default, flagged on request.

A product is *withdrawn* when any backend's feed lists it with a withdrawing class (every class
but ``eviction-to-lta``, which only moves that backend's copy to long-term archive): ESA's
withdrawals (obsolete, reprocessed, corrupt, invalid, ...) concern the product, not one copy,
and mirrors purge late, so the copies other backends still serve are withdrawn too.

- ``deleted=exclude`` (default): withdrawn products are not returned; ``numberMatched`` is
  omitted while the registry holds any withdrawal (it could no longer be exact).
- ``deleted=include``: they are returned with ``properties.deprecated: true`` (STAC Version
  extension), ``properties["mqs:deletion"]`` (``cause``, ``class``, ``date``, ``backends``) and,
  when its successor can be identified (same datatake and tile, newer processing: on the
  page, else by one federation search at its sensing time), a ``successor-version`` link.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from mqs.deletions.causes import DUPLICATE, OBSOLETE, REPLACED, WITHDRAWN
from mqs.deletions.registry import Deletion
from mqs.deletions.service import Deletions
from mqs.deletions.store import StoreError
from mqs.errors import InvalidRequest
from mqs.identity import product_name_of_item
from mqs.links import GEOJSON, item_url
from mqs.literals import parse_instant
from mqs.query import SearchQuery

log = logging.getLogger("mqs.deletions")

MODES = ("exclude", "include")
MAX_SUCCESSOR_SEARCHES = 3  # per page: flagged products whose successor is not on it
MAX_SUCCESSOR_CANDIDATES = 100  # products read at a sensing instant
SUPERSEDED = frozenset({REPLACED, OBSOLETE, DUPLICATE})  # classes whose successor is searched
VERSION_EXTENSION = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
_S2 = re.compile(r"^(S2[A-D]_MSI\w{3}_\d{8}T\d{6})_N(\d{4})_(R\d{3}_T\w{5})_(\d{8}T\d{6})$")
_S1 = re.compile(r"^(S1[A-D]_\w{2}_\w{4}_\w{4}_\d{8}T\d{6}_\d{8}T\d{6}_\d{6}_[0-9A-F]{6})_\w{4}$")


def deleted_mode(params: dict[str, Any]) -> str:
    """The ``deleted`` search parameter (GET or POST); a 400 for anything else."""
    value = params.get("deleted", "exclude")
    if value not in MODES:
        raise InvalidRequest("deleted must be 'exclude' (the default) or 'include'")
    return str(value)


def _withdrawals(
    found: dict[str, list[Deletion]], name: str, hidden: frozenset[str] = frozenset()
) -> list[Deletion]:
    """``name``'s withdrawals, except those of backends the user may not see."""
    return [d for d in found.get(name, []) if d.cls in WITHDRAWN and d.backend not in hidden]


async def screen(
    deletions: Deletions | None,
    result: Any,
    mode: str,
    base: str,
    hidden: frozenset[str] = frozenset(),
) -> None:
    """Drop or flag the withdrawn products of one search page (``result``: a SearchResult).

    ``base`` is the gateway's root URL (successor links point at the gateway); ``hidden`` the
    backends the user may not see (their withdrawals are not shown, nor searched).
    """
    if deletions is None or not deletions.sources or not result.items:
        return  # no backend here publishes deletions
    names = [product_name_of_item(item) for item in result.items]
    try:
        found = await deletions.registry.lookup(names)
        found = {n: _withdrawals(found, n, hidden) for n in found}
        recorded = mode == "exclude" and await deletions.registry.count(sorted(deletions.sources))
    except StoreError as exc:
        log.warning("search answered without deletion information: %s", exc)
        return
    if mode == "exclude":
        if recorded:
            result.matched = None
        kept = zip(result.items, names, strict=True)
        result.items = [item for item, name in kept if not found.get(name)]
    else:
        await _flag_page(deletions, result.items, names, found, base, hidden)


async def _flag_page(
    deletions: Deletions,
    items: list[dict[str, Any]],
    names: list[str],
    found: dict[str, list[Deletion]],
    base: str,
    hidden: frozenset[str],
) -> None:
    """Flag the page's withdrawn products, linking each to its successor when one is found."""
    by_name = dict(zip(names, items, strict=True))
    withdrawn = [n for n in names if found.get(n)]
    newer = {n: by_name.get(successor(n, names, found) or "") for n in withdrawn}
    missing = [(by_name[n], n) for n in withdrawn if newer[n] is None and _replaced(found[n])]
    newer |= await _successors_elsewhere(deletions, missing[:MAX_SUCCESSOR_SEARCHES], hidden)
    for name in withdrawn:
        later = newer.get(name)
        href = item_url(base, str(later.get("collection")), later["id"]) if later else None
        flag(by_name[name], found[name], href)


def _replaced(withdrawals: list[Deletion]) -> bool:
    """Whether a newer version of the product may exist (worth a search)."""
    return any(d.cls in SUPERSEDED for d in withdrawals)


async def _successors_elsewhere(
    deletions: Deletions, wanted: list[tuple[dict[str, Any], str]], hidden: frozenset[str]
) -> dict[str, dict[str, Any] | None]:
    """Successors not on the page: one federation search per product, at its sensing time.

    Reprocessed versions share the original's collection and sensing time, so a search for
    that instant finds them (with the rest of the datatake).
    """
    federation = deletions.federation
    if federation is None or not wanted:
        return {}

    async def one(item: dict[str, Any], name: str) -> tuple[str, dict[str, Any] | None]:
        when = parse_instant(str(item["properties"].get("datetime")))
        collection = (str(item.get("collection")),)
        query = SearchQuery(collection, datetime=(when, when), limit=MAX_SUCCESSOR_CANDIDATES)
        page = (await federation.search(query, None, hidden)).items
        names = [product_name_of_item(i) for i in page]
        known = await deletions.registry.lookup(names)
        chosen = successor(name, names, {n: _withdrawals(known, n, hidden) for n in known})
        return name, next((i for i, n in zip(page, names, strict=True) if n == chosen), None)

    try:
        return dict(await asyncio.gather(*(one(item, name) for item, name in wanted)))
    except (InvalidRequest, StoreError) as exc:
        log.info("no successor search: %s", exc)
        return {}


async def screen_item(
    deletions: Deletions | None, item: dict[str, Any], hidden: frozenset[str] = frozenset()
) -> None:
    """A single item asked for by id: a withdrawn product is flagged, never hidden."""
    if deletions is None or not deletions.sources:
        return
    name = product_name_of_item(item)
    try:
        found = await deletions.registry.lookup([name])
    except StoreError as exc:
        log.warning("item answered without deletion information: %s", exc)
        return
    if withdrawals := _withdrawals(found, name, hidden):
        flag(item, withdrawals, None)


def flag(item: dict[str, Any], withdrawals: list[Deletion], successor: str | None) -> None:
    """Mark ``item`` deprecated, with the earliest withdrawal's cause (and its successor)."""
    first = withdrawals[0]
    item["properties"]["deprecated"] = True
    item["properties"]["mqs:deletion"] = {
        "cause": first.cause,
        "class": first.cls,
        "date": first.date,
        "backends": sorted(d.backend for d in withdrawals),
    }
    extensions = item.setdefault("stac_extensions", [])
    if VERSION_EXTENSION not in extensions:
        extensions.append(VERSION_EXTENSION)
    if successor is not None:
        item.setdefault("links", []).append(
            {"rel": "successor-version", "href": successor, "type": GEOJSON}
        )


def lineage(name: str) -> tuple[str, str] | None:
    """(what stays across reprocessing, what orders versions) of a Sentinel product name.

    Sentinel-2: mission, level, sensing time, orbit and tile stay; the processing baseline
    (``N0500``) and generation time order. Sentinel-1: everything but the product id stays.
    """
    if found := _S2.match(name):
        return (f"{found[1]}_{found[3]}", f"{found[2]}{found[4]}")
    if found := _S1.match(name):
        return (found[1], "")
    return None


def successor(name: str, names: list[str], found: dict[str, list[Deletion]]) -> str | None:
    """The newest product among ``names`` that replaces ``name`` and is not withdrawn itself."""
    mine = lineage(name)
    if mine is None:
        return None
    candidates = []
    for other in names:
        theirs = lineage(other)
        if other == name or theirs is None or theirs[0] != mine[0]:
            continue
        if theirs[1] >= mine[1] and not _withdrawals(found, other):
            candidates.append((theirs[1], other))
    return max(candidates)[1] if candidates else None
