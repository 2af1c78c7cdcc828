"""The ``auth:`` section of the federation file: trusted issuers, access rules, rate limits.

Absent, it means what the gateway did before: anonymous access to everything, no issuer.
Client secrets are never in the file, only the names of the environment variables holding them.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Asymmetric signatures only: never ``none``, never HS* (a public key must not be an HMAC key).
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
)
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}

Assurance = Literal["low", "medium", "high"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntrospectionConfig(_Strict):
    """RFC 7662 token introspection with HTTP Basic client authentication."""

    client_id_env: str
    client_secret_env: str


class IssuerConfig(_Strict):
    """One trusted OpenID Connect issuer (EGI Check-in, a national IdP, a test issuer)."""

    url: str  # the issuer identifier; discovery at {url}/.well-known/openid-configuration
    audience: str | list[str] | None = None  # None: the token's aud is not checked
    userinfo: bool = False  # entitlements and assurance come from the userinfo endpoint
    introspection: IntrospectionConfig | None = None  # opaque tokens are introspected
    min_assurance: Assurance | None = None  # eduperson_assurance the user must have
    algorithms: list[str] = list(ALLOWED_ALGORITHMS)
    leeway_s: int = Field(30, ge=0, le=300)  # clock skew allowed on exp/nbf/iat
    jwks_refresh_min_s: float = Field(60.0, ge=0)  # unknown kid: JWKS refetched at most this often
    discovery_ttl_s: float = Field(3600.0, gt=0)  # discovery document and JWKS kept this long
    timeout_s: float = Field(5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        ):
            raise ValueError("issuer url must be https:// (http:// only on loopback)")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("issuer url must not carry credentials, a query or a fragment")
        return v.rstrip("/")

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ALLOWED_ALGORITHMS]
        if bad or not v:
            raise ValueError(f"algorithms must be among {', '.join(ALLOWED_ALGORITHMS)}")
        return v

    @property
    def audiences(self) -> list[str]:
        if self.audience is None:
            return []
        return [self.audience] if isinstance(self.audience, str) else list(self.audience)


class AccessRule(_Strict):
    """Who may see a collection: any listed entitlement or group (neither: any signed-in user)."""

    entitlements: list[str] = []
    groups: list[str] = []


class RateLimitConfig(_Strict):
    """A token bucket per user (per client address when anonymous)."""

    requests_per_s: float = Field(gt=0)  # sustained rate
    burst: int = Field(ge=1)  # bucket size: requests allowed at once
    anonymous_requests_per_s: float | None = Field(None, gt=0)  # None: requests_per_s
    anonymous_burst: int | None = Field(None, ge=1)  # None: burst


class AuthConfig(_Strict):
    anonymous: bool = True  # false: every endpoint but the public ones needs a token
    issuers: list[IssuerConfig] = []
    collections: dict[str, AccessRule] = {}  # canonical collection id -> who may see it
    backends: dict[str, AccessRule] = {}  # backend id -> who may see its items
    rate_limit: RateLimitConfig | None = None  # None: no rate limit
    userinfo_ttl_s: float = Field(60.0, ge=0)  # userinfo/introspection answers, by token hash

    @model_validator(mode="after")
    def _consistent(self) -> AuthConfig:
        urls = [i.url for i in self.issuers]
        if len(set(urls)) != len(urls):
            raise ValueError("issuers: an issuer url appears twice")
        if not self.issuers and (not self.anonymous or self.collections or self.backends):
            raise ValueError("anonymous: false and access rules need at least one issuer")
        return self
