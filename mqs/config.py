"""The federation configuration: one YAML file, validated once, plus ``MQS_*`` overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from mqs.auth.config import AuthConfig
from mqs.deletions.config import DeletionsConfig

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BreakerConfig(_Strict):
    """A backend's circuit breaker (see :mod:`mqs.breaker`)."""

    failures: int = Field(5, ge=0)  # consecutive failed searches that open it; 0: never opens
    cooldown_s: float = Field(30.0, gt=0)  # how long it stays open before a trial search


class ServerConfig(_Strict):
    title: str = "MQS federated STAC API"
    description: str = "One STAC API over many Earth-observation catalogues."
    base_url: str | None = None
    default_limit: int = Field(10, ge=1)
    max_limit: int = Field(1000, ge=1)
    cors_origins: list[str] = ["*"]
    # A search answers by then with the backends that did (per-backend timeout_s still applies).
    search_deadline_s: float = Field(20.0, gt=0, le=600)
    breaker: BreakerConfig = BreakerConfig()  # every backend's, unless it has its own
    deletions: DeletionsConfig = DeletionsConfig()  # DeletedProducts sync (mqs.deletions)

    @model_validator(mode="after")
    def _limits(self) -> ServerConfig:
        if self.default_limit > self.max_limit:
            raise ValueError("default_limit must not exceed max_limit")
        return self


class CacheConfig(_Strict):
    url: str = "memory://"
    collections_ttl_s: float = Field(3600, ge=0)
    # Backend answers, cached beneath the shared HTTP client (0: not cached).
    search_ttl_s: float = Field(30, ge=0)  # search pages: GET with a query, POST searches
    item_ttl_s: float = Field(300, ge=0)  # documents: GET without a query (collection, manifest)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=0)  # larger answers are not cached
    memory_max_bytes: int = Field(256 * 1024 * 1024, ge=1)  # memory://: total size (LRU)
    # Whole search pages, for repeated identical searches (mqs.pagecache); 0: off.
    page_ttl_s: float = Field(0, ge=0)
    # Identical searches in flight at the same moment computed once (mqs.pagecache).
    coalesce_pages: bool = True

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("cache url must be memory://, redis://, rediss:// or unix://")
        return v


class Extent(_Strict):
    bbox: list[float] = [-180.0, -90.0, 180.0, 90.0]
    interval: list[str | None] = [None, None]


class CollectionConfig(_Strict):
    title: str | None = None
    description: str = ""
    license: str = "proprietary"
    keywords: list[str] = []
    extent: Extent | None = None


class BackendAuth(_Strict):
    """Credentials are never in the file: only the names of environment variables."""

    type: Literal["basic", "bearer", "oauth2"]
    username_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    # oauth2: a token endpoint (Keycloak) and a client; the password grant when
    # username_env/password_env are set, else client credentials (client_secret_env).
    token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    # oauth2: the grant, said explicitly (None: password when username_env is set, else client
    # credentials); refresh_token: a long-lived (offline) refresh token from refresh_token_env.
    # Tokens are renewed with the refresh token the endpoint gives, while it is valid.
    grant: Literal["password", "client_credentials", "refresh_token"] | None = None
    refresh_token_env: str | None = None
    # Origins (scheme://host[:port]) a download may be redirected to and that get the same
    # credentials (CDSE's catalogue sends $value to download.dataspace.copernicus.eu). A
    # redirect anywhere else fails that copy: credentials and requests never follow it.
    download_origins: list[str] = []

    @field_validator("download_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for origin in v:
            scheme, sep, rest = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest or "@" in rest:
                raise ValueError(f"{origin!r} must be an origin: http(s)://host[:port]")
        return [origin.lower() for origin in v]

    @property
    def oauth2_grant(self) -> Literal["password", "client_credentials", "refresh_token"]:
        if self.grant is not None:
            return self.grant
        return "password" if self.username_env or self.password_env else "client_credentials"

    @model_validator(mode="after")
    def _complete(self) -> BackendAuth:
        if self.type == "oauth2" and not (self.token_url and self.client_id):
            raise ValueError("oauth2 auth needs token_url and client_id")
        if self.grant is not None and self.type != "oauth2":
            raise ValueError("grant is for oauth2 auth only")
        if self.grant == "password" and not (self.username_env and self.password_env):
            raise ValueError("the oauth2 password grant needs username_env and password_env")
        if self.grant == "client_credentials" and not self.client_secret_env:
            raise ValueError("the oauth2 client_credentials grant needs client_secret_env")
        if self.grant == "refresh_token" and not self.refresh_token_env:
            raise ValueError("the oauth2 refresh_token grant needs refresh_token_env")
        if self.token_url and not self.token_url.startswith(("https://", "http://")):
            raise ValueError("token_url must be an http(s) URL")
        return self


class BackendConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    kind: str
    url: str
    title: str | None = None
    priority: int = 0
    timeout_s: float = Field(10.0, gt=0, le=600)
    collections: list[str] | dict[str, str | dict[str, Any]]
    options: dict[str, Any] = {}
    auth: BackendAuth | None = None
    # Send filter clauses the backend can evaluate (false: the gateway evaluates all of them).
    filter_pushdown: bool = True
    breaker: BreakerConfig | None = None  # None: the server's

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if "@" in v.split("/", 3)[2]:
            raise ValueError("credentials must not be in the url: use auth with env names")
        return v.rstrip("/")

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from adapters.registry import ADAPTERS

        if v not in ADAPTERS:
            raise ValueError(f"unknown kind {v!r}; known kinds: {', '.join(sorted(ADAPTERS))}")
        return v

    @model_validator(mode="after")
    def _options(self) -> BackendConfig:
        from adapters.registry import ADAPTERS

        try:
            ADAPTERS[self.kind].Options.model_validate(self.options)
        except ValidationError as exc:
            raise ValueError(format_errors(exc, prefix="options")) from None
        check = getattr(ADAPTERS[self.kind], "check_collections", None)
        if check is not None:  # a kind that must understand each collection's mapping
            check(self.collection_map())
        return self

    @property
    def display_title(self) -> str:
        return self.title or self.id

    def collection_map(self) -> dict[str, str | dict[str, Any]]:
        """Canonical collection id -> the backend's own name or mapping (None: built-in)."""
        if isinstance(self.collections, list):
            return dict.fromkeys(self.collections, "")
        return dict(self.collections)


class FederationConfig(_Strict):
    server: ServerConfig = ServerConfig()
    cache: CacheConfig = CacheConfig()
    collections: dict[str, CollectionConfig]
    backends: list[BackendConfig] = Field(min_length=1)
    auth: AuthConfig = AuthConfig()  # sign-in, access rules, rate limits (mqs.auth)

    @field_validator("collections")
    @classmethod
    def _collection_ids(cls, v: dict[str, CollectionConfig]) -> dict[str, CollectionConfig]:
        import re

        for cid in v:
            if not re.match(ID_PATTERN, cid):
                raise ValueError(f"collection id {cid!r} must match {ID_PATTERN}")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> FederationConfig:
        seen: set[str] = set()
        for i, backend in enumerate(self.backends):
            if backend.id in seen:
                raise ValueError(f"backends[{i}].id: duplicate backend id {backend.id!r}")
            seen.add(backend.id)
            for cid in backend.collection_map():
                if cid not in self.collections:
                    raise ValueError(
                        f"backends[{i}].collections.{cid}: unknown collection {cid!r} "
                        "(declare it under collections:)"
                    )
        for cid in self.auth.collections:
            if cid not in self.collections:
                raise ValueError(f"auth.collections.{cid}: unknown collection {cid!r}")
        for bid in self.auth.backends:
            if bid not in seen:
                raise ValueError(f"auth.backends.{bid}: unknown backend {bid!r}")
        return self

    def routing(self) -> dict[str, list[BackendConfig]]:
        """Canonical collection id -> the backends serving it, highest priority first."""
        table: dict[str, list[BackendConfig]] = {cid: [] for cid in self.collections}
        for backend in sorted(self.backends, key=lambda b: -b.priority):
            for cid in backend.collection_map():
                table[cid].append(backend)
        return table


class Settings(BaseSettings):
    """Process settings: where the federation file is and what overrides it."""

    model_config = SettingsConfigDict(env_prefix="MQS_", extra="ignore")

    config: Path | None = None
    cache_url: str | None = None
    token_secret: SecretStr | None = None
    token_ttl_s: float = 24 * 3600
    log_level: Literal["debug", "info", "warning", "error"] = "info"  # MQS_LOG_LEVEL
    log_format: Literal["json", "console"] = "json"  # MQS_LOG_FORMAT: one JSON object a line
    shutdown_timeout_s: int = Field(30, ge=0)  # SIGTERM: in-flight requests get this long


class ConfigError(Exception):
    """An invalid federation file; the message names each bad key by its path."""


def _loc(loc: tuple[int | str, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def format_errors(exc: ValidationError, prefix: str = "") -> str:
    """One line per error: ``backends[0].timeout_s: Input should be greater than 0``."""
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        where = _loc(tuple(err["loc"]), prefix)
        lines.append(f"{where}: {msg}" if where else msg)
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> FederationConfig:
    """Validate an already-read YAML document."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must be a YAML mapping")
    try:
        return FederationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration\n{format_errors(exc)}") from None


def load_config(path: Path | str, settings: Settings | None = None) -> FederationConfig:
    """Read, validate and apply environment overrides (``MQS_CACHE_URL``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    config = parse_config(data, str(path))
    cache_url = (settings or Settings()).cache_url
    if cache_url:
        cache = CacheConfig.model_validate(config.cache.model_dump() | {"url": cache_url})
        config = config.model_copy(update={"cache": cache})
    return config


def secret_from_env(name: str | None) -> str | None:
    """A secret read from the environment variable the config names."""
    return os.environ.get(name) if name else None
