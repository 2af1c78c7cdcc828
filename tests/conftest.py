"""Fixtures as factories: live emulators and a live gateway on loopback ports."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.faults import FaultInjector, Faults
from adapters.registry import EMULATORS
from mqs.app import create_app
from mqs.config import Settings, parse_config
from mqs.serving import bound_socket, serving_in_thread, url_of

sys.path.insert(0, str(Path(__file__).parent))

COLLECTIONS = ("sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a")
TEST_SECRET = "test-secret-for-paging-tokens"
# Tests count backend requests: backends' answers are not cached unless a test asks (`cache=`).
UNCACHED_ANSWERS = {"search_ttl_s": 0, "item_ttl_s": 0}
# Tests see every backend failure as it happens: circuit breakers never open unless a test
# configures them (`server={"breaker": {...}}`).
NO_BREAKER = {"breaker": {"failures": 0}}


@dataclass
class LiveFederation:
    url: str
    backend_urls: dict[str, str]
    emulators: dict[str, Any]
    config: Any


@dataclass
class Archive:
    """One emulated backend: its items and how it is configured and served."""

    items: list[dict[str, Any]]
    kind: str = "stac"
    priority: int = 0
    collections: Any = None
    options: dict[str, Any] | None = None
    emulator: dict[str, Any] | None = None
    down: bool = False  # configured, but nothing listens on its port
    auth: dict[str, Any] | None = None  # the backend's `auth:` config ("{url}": its own URL)
    filter_pushdown: bool = True  # the backend's `filter_pushdown:` config
    faults: Faults | None = None  # serve the emulator behind this fault injector
    timeout_s: float | None = None  # the backend's `timeout_s:` config


MakeFederation = Callable[..., LiveFederation]


@pytest.fixture
def make_federation() -> Iterator[MakeFederation]:
    yield from _federations()


@pytest.fixture(scope="module")
def make_module_federation() -> Iterator[MakeFederation]:
    """``make_federation`` for federations a whole module shares (e.g. with runtime faults)."""
    yield from _federations()


def _own_url(auth: dict[str, Any], url: str) -> dict[str, Any]:
    """``auth`` with ``{url}`` in its strings replaced by the emulator's URL (token_url)."""
    return {k: v.replace("{url}", url) if isinstance(v, str) else v for k, v in auth.items()}


def _federations() -> Iterator[MakeFederation]:
    """``make_federation(a=Archive(...), b=Archive(...), server={...})`` -> a live federation.

    ``extra_collections`` adds canonical collections (id -> config) to the four of
    ``COLLECTIONS``; ``cache`` is the federation's ``cache:`` config.
    """
    stack = ExitStack()

    def make(
        server: dict[str, Any] | None = None,
        extra_collections: dict[str, dict[str, Any]] | None = None,
        cache: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
        **archives: Archive,
    ) -> LiveFederation:
        apps, backends, emulators = [], [], {}
        for bid, archive in archives.items():
            sock = bound_socket()
            url = url_of(sock)
            emulator = EMULATORS[archive.kind](archive.items, **(archive.emulator or {}))
            emulators[bid] = emulator
            if archive.faults is not None:
                emulator = FaultInjector(emulator, archive.faults)
            if archive.down:
                sock.close()  # its port stays in the config: connections are refused
            else:
                apps.append((emulator, sock))
            backends.append(
                {
                    "id": bid,
                    "kind": archive.kind,
                    "url": url,
                    "priority": archive.priority,
                    "collections": archive.collections or list(COLLECTIONS),
                    "options": archive.options or {},
                    "filter_pushdown": archive.filter_pushdown,
                    **({"auth": _own_url(archive.auth, url)} if archive.auth else {}),
                    **({"timeout_s": archive.timeout_s} if archive.timeout_s else {}),
                }
            )
        raw = {
            "server": NO_BREAKER | (server or {}),
            "collections": {cid: {"title": cid} for cid in COLLECTIONS} | (extra_collections or {}),
            "backends": backends,
        }
        raw["cache"] = UNCACHED_ANSWERS | (cache or {})
        if auth is not None:
            raw["auth"] = auth  # the federation's `auth:` section (sign-in, rules, rate limits)
        config = parse_config(raw)
        settings = Settings(token_secret=TEST_SECRET)
        gateway = bound_socket()
        apps.append((create_app(config, settings), gateway))
        urls = stack.enter_context(serving_in_thread(apps))
        backend_urls = {b["id"]: b["url"] for b in backends}
        return LiveFederation(urls[-1], backend_urls, emulators, config)

    yield make
    stack.close()
