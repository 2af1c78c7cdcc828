"""A real OpenID Connect issuer for the tests, served on 127.0.0.1 like EGI Check-in.

It has its own RSA and EC signing keys and serves what the gateway relies on:
``/.well-known/openid-configuration``, the JWKS (rotatable), RFC 7662 introspection with HTTP
Basic client authentication, and userinfo answers that carry ``eduperson_entitlement``,
``eduperson_assurance`` and ``voperson_id`` (as Check-in, entitlements are never put into the
access tokens it signs). It counts the requests each endpoint gets and remembers every token it
issued, so tests can look for them where they must never appear.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mqs.serving import bound_socket, serving_in_thread, url_of

VO_MEMBER = "urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu"
OTHER_VO_MEMBER = "urn:mace:egi.eu:group:vo.other.eu:role=member#aai.egi.eu"
IAP_LOW = "https://refeds.org/assurance/IAP/low"
IAP_MEDIUM = "https://refeds.org/assurance/IAP/medium"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class User:
    """What the issuer's userinfo says about one subject."""

    sub: str
    entitlements: list[str] = field(default_factory=list)
    assurance: list[str] = field(default_factory=lambda: [IAP_LOW])
    voperson_id: str | None = None

    def userinfo(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "sub": self.sub,
            "eduperson_entitlement": self.entitlements,
            "eduperson_assurance": self.assurance,
        }
        return info | ({"voperson_id": self.voperson_id} if self.voperson_id else {})


class TestIssuer:
    """The issuer's state and its ASGI app (serve it with :func:`serving_issuers`)."""

    __test__ = False  # not a test class

    def __init__(self, url: str, client_id: str, client_secret: str) -> None:
        self.url = url
        self.client_id = client_id
        self.client_secret = client_secret
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})
        self.published = [self.rsa, self.ec]
        self.retired: list[Any] = []  # keys no longer published (their tokens still verify here)
        self.users: dict[str, User] = {}
        self.opaque: dict[str, dict[str, Any]] = {}
        self.issued: list[str] = []  # every token handed out (for the leak scans)
        self.counts: Counter[str] = Counter()
        self.failing = False  # every endpoint answers 503 (an outage)
        self.stall_s = 0.0  # every answer waits this long first (a slow or hanging issuer)

    # --- tokens -------------------------------------------------------------------------

    def user(self, sub: str | None = None, **kwargs: Any) -> User:
        user = User(sub or f"user-{secrets.token_hex(6)}", **kwargs)
        self.users[user.sub] = user
        return user

    def claims(self, sub: str, lifetime_s: float = 300, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.url, "sub": sub, "aud": "mqs", "iat": now, "exp": now + lifetime_s}
        return base | {"jti": secrets.token_hex(8), "scope": "openid profile"} | extra

    def token(
        self,
        sub: str,
        *,
        alg: str = "RS256",
        key: Any = None,
        kid: str | None = None,
        lifetime_s: float = 300,
        **extra: Any,
    ) -> str:
        """A signed access token (claims overridable; ``extra`` values None are dropped)."""
        key = key or (self.ec if alg.startswith("ES") else self.rsa)
        claims = {k: v for k, v in self.claims(sub, lifetime_s, **extra).items() if v is not None}
        header = {"alg": alg, "typ": "at+jwt", "kid": kid or key.kid}
        return self._keep(jwt.encode(header, claims, key, algorithms=[alg]))

    def forged(self, header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
        """A token put together by hand (``alg: none``, HMAC with the public key...)."""
        head = b64(orjson.dumps(header)) + "." + b64(orjson.dumps(claims))
        return self._keep(f"{head}.{b64(signature)}")

    def hs256_with_public_key(self, sub: str) -> str:
        """The algorithm-confusion attack: HS256 keyed with the issuer's public RSA key (PEM)."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.rsa.kid}
        head = b64(orjson.dumps(header)) + "." + b64(orjson.dumps(self.claims(sub)))
        public_pem = self.rsa.as_pem(private=False)
        mac = hmac.new(public_pem, head.encode(), hashlib.sha256).digest()
        return self._keep(f"{head}.{b64(mac)}")

    def opaque_token(self, sub: str, lifetime_s: float = 300, **extra: Any) -> str:
        token = secrets.token_urlsafe(32)
        self.opaque[token] = self.claims(sub, lifetime_s, client_id="portal", **extra)
        return self._keep(token)

    def _keep(self, token: str) -> str:
        self.issued.append(token)
        return token

    def rotate(self) -> str:
        """A new RSA signing key replaces the old one in the JWKS; returns its kid."""
        kid = f"rsa-{len(self.retired) + 2}"
        self.retired.append(self.rsa)
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})
        self.published = [self.rsa, self.ec]
        return kid

    # --- endpoints ----------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            middleware=[Middleware(_Outage, issuer=self)],
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/introspect", self._introspect, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
            ],
        )

    async def _discovery(self, request: Request) -> Response:
        self.counts["discovery"] += 1
        return JSONResponse(
            {
                "issuer": self.url,
                "jwks_uri": f"{self.url}/jwks",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "introspection_endpoint": f"{self.url}/introspect",
                "token_endpoint": f"{self.url}/token",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        self.counts["jwks"] += 1
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.published]})

    def _client_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return client_id == self.client_id and hmac.compare_digest(secret, self.client_secret)

    def _active(self, token: str) -> dict[str, Any] | None:
        """The claims of a live token this issuer gave out, else None."""
        claims = self.opaque.get(token)
        if claims is None:
            try:
                keys = KeySet([*self.published, *self.retired])
                claims = jwt.decode(token, keys, algorithms=["RS256", "PS256", "ES256"]).claims
            except (JoseError, ValueError):
                return None
        return claims if claims["exp"] > time.time() else None

    async def _introspect(self, request: Request) -> Response:
        self.counts["introspect"] += 1
        if not self._client_ok(request):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = parse_qs((await request.body()).decode())
        token = form.get("token", [""])[0]
        claims = self._active(token)
        if claims is None:
            return JSONResponse({"active": False})
        user = self.users.get(claims["sub"])
        extra = user.userinfo() if user else {}
        return JSONResponse({"active": True, "token_type": "Bearer", **claims, **extra})

    async def _userinfo(self, request: Request) -> Response:
        self.counts["userinfo"] += 1
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        claims = self._active(token) if scheme.lower() == "bearer" else None
        if claims is None:
            challenge = 'Bearer error="invalid_token"'
            return JSONResponse({"error": "invalid_token"}, 401, {"WWW-Authenticate": challenge})
        user = self.users.get(claims["sub"]) or User(claims["sub"], assurance=[])
        return JSONResponse(user.userinfo())


class _Outage:
    """503 for everything while the issuer is ``failing``; answers ``stall_s`` late."""

    def __init__(self, app: ASGIApp, issuer: TestIssuer) -> None:
        self.app, self.issuer = app, issuer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.issuer.stall_s:
            await asyncio.sleep(self.issuer.stall_s)
        if scope["type"] == "http" and self.issuer.failing:
            self.issuer.counts["outage"] += 1
            await JSONResponse({"error": "temporarily_unavailable"}, 503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@contextmanager
def serving_issuers(count: int = 1, client_id: str = "mqs-gateway"):  # type: ignore[no-untyped-def]
    """``count`` issuers on loopback ports, each with its own keys and client secret."""
    socks = [bound_socket() for _ in range(count)]
    issuers = [TestIssuer(url_of(s), client_id, secrets.token_urlsafe(24)) for s in socks]
    with serving_in_thread([(i.app(), s) for i, s in zip(issuers, socks, strict=True)]):
        yield issuers
