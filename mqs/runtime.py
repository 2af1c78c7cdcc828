"""Everything a running gateway holds, opened at startup and closed at shutdown."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import orjson

from adapters.registry import ADAPTERS
from mqs.auth import Gate
from mqs.breaker import Breakers
from mqs.cache import Cache, make_cache
from mqs.config import FederationConfig, Settings
from mqs.credentials import BackendCredentials, credentials_for
from mqs.deletions.service import Deletions
from mqs.federation import Federation, Member
from mqs.httpcache import CachePolicy, CachingTransport
from mqs.logs import request_id_header
from mqs.paging import TokenCodec

log = logging.getLogger("mqs")


@dataclass
class Runtime:
    config: FederationConfig
    settings: Settings
    http: httpx.AsyncClient
    cache: Cache
    federation: Federation
    codec: TokenCodec
    # backend id -> the gateway's credentials for it (downloads: mqs.download)
    credentials: dict[str, BackendCredentials] = field(default_factory=dict)
    auth: Gate | None = None  # sign-in, access rules, rate limits (mqs.auth); None: open
    deletions: Deletions | None = None  # the deletion registry and its sync (mqs.deletions)


def config_fingerprint(config: FederationConfig) -> str:
    """Changes whenever the federation's membership or mappings change (tokens die with it)."""
    operational = {"title", "timeout_s", "auth", "breaker"}
    relevant = [b.model_dump(exclude=operational) for b in config.backends]
    return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def token_secret(settings: Settings) -> bytes:
    if settings.token_secret is not None:
        return settings.token_secret.get_secret_value().encode()
    log.warning("MQS_TOKEN_SECRET is not set: paging tokens are valid for this process only")
    return secrets.token_bytes(32)


def http_client(cache: Cache | None = None, policy: CachePolicy | None = None) -> httpx.AsyncClient:
    """The one pooled client every adapter shares; with a cache, backend answers are cached."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(limits=limits)
    if cache is not None:
        transport = CachingTransport(transport, cache, policy or CachePolicy())
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(10.0),
        follow_redirects=False,
        headers={"User-Agent": "mqs/0.1 (+https://github.com/mqs)"},
        event_hooks={"request": [request_id_header]},  # X-Request-ID of the request served
    )


@asynccontextmanager
async def open_runtime(config: FederationConfig, settings: Settings) -> AsyncIterator[Runtime]:
    cache = make_cache(config.cache.url, config.cache.memory_max_bytes)
    http = http_client(cache, CachePolicy.from_config(config.cache))
    members = [Member(b, ADAPTERS[b.kind](b, http, cache)) for b in config.backends]
    codec = TokenCodec(token_secret(settings), config_fingerprint(config), settings.token_ttl_s)
    # Breakers live as long as the process (each worker has its own: see mqs.breaker).
    breakers = Breakers.for_backends(config.backends, config.server.breaker)
    federation = Federation(members, config.routing(), config.server.search_deadline_s, breakers)
    runtime = Runtime(config, settings, http, cache, federation, codec)
    runtime.credentials = credentials_for(config.backends, http, cache)
    runtime.auth = Gate.for_federation(config, http, cache)
    adapters = {m.config.id: m.adapter for m in members}
    runtime.deletions = Deletions.open(
        config.server.deletions, config.cache.url, adapters, federation
    )
    try:
        runtime.deletions.start()
        yield runtime
    finally:
        await runtime.deletions.close()
        await http.aclose()
        await cache.close()
