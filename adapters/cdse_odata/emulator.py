"""An executable specification of the Copernicus Data Space Ecosystem OData catalogue.

``create_emulator(items)`` serves, for a list of STAC items (or a JSON file of them), what
``catalogue.dataspace.copernicus.eu`` answers for the products those items describe:

- ``GET /odata/v1/Products`` with ``$filter`` (:mod:`.emulator_filter`), ``$orderby``,
  ``$top`` (default 20, at most 1000), ``$skip`` (at most 10000), ``$count`` and ``$expand``
  (``Attributes``, ``Assets``). Pages are shaped like the recordings in ``tests/fixtures/cdse``:
  ``@odata.context``, ``@odata.count`` only on a first page that asked for it (a page with
  ``$skip`` has none), ``value``, and ``@odata.nextLink`` while products follow. The first next
  link is the request's own parameters plus ``$skip``; later ones are rebuilt as ``$filter``,
  ``$top``, ``$skip``, ``$expand``, ``$orderby`` (``$count`` dropped), percent-encoded with
  ``+`` for spaces, exactly as recorded. Out-of-range ``$top``/``$skip`` get the documented
  FastAPI 422 ``{"detail": [...]}``; an invalid ``$filter`` a 400 ``{"detail": "..."}``.
- ``GET /odata/v1/Products(<Id>)`` (one entity), ``GET|HEAD /odata/v1/Products(<Id>)/$value``
  (the product zip; needs ``Authorization: Bearer`` with a token of this emulator, else 401),
  ``GET /odata/v1/Assets(<Id>)/$value`` (the quick-look JPEG).
- ``POST /auth/realms/CDSE/protocol/openid-connect/token``: Keycloak's token endpoint (form
  body; ``password``, ``client_credentials`` and ``refresh_token`` grants), with Keycloak's
  answers and errors (401 ``invalid_grant`` for wrong credentials, 401 ``invalid_client``, 400
  ``invalid_grant`` for a dead refresh token, 400 ``unsupported_grant_type``).

Not recorded, hence modelled on CDSE's documentation and FastAPI/Keycloak defaults: error
bodies, single entities, downloads and the token endpoint. ``app.state.requests`` counts the
catalogue's requests, ``app.state.queries`` holds each search's parameters,
``app.state.token_requests`` / ``app.state.grants`` the token endpoint's calls.
"""

from __future__ import annotations

import io
import re
import secrets
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.cdse_odata.emulator_deleted import DeletedProducts
from adapters.cdse_odata.emulator_errors import Rejected
from adapters.cdse_odata.emulator_errors import int_param as _int_param
from adapters.cdse_odata.emulator_filter import FilterError, compile_filter
from adapters.cdse_odata.emulator_records import (
    Item,
    Product,
    load_items,
    product_from_item,
    product_json,
)
from adapters.emulated_download import Payload, ranged_response

__all__ = ["create_emulator"]

TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
_PATH = re.compile(
    r"^(?P<set>Products|Assets)(?:\('?(?P<key>[0-9a-fA-F-]{36})'?\))?(?P<value>/\$value)?$"
)
_ORDER_FIELDS = {
    "ContentDate/Start": lambda p: p.start,
    "ContentDate/End": lambda p: p.end,
    "PublicationDate": lambda p: p.publication,
    "Name": lambda p: p.name,
}
_SCOPE = "AUDIENCE_PUBLIC openid email profile ondemand_processing user-context"
_JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


def _ordered(products: list[Product], orderby: str | None) -> list[Product]:
    """``$orderby`` (``Field [asc|desc]``, comma-separated); ties in the catalogue's Id order."""
    ordered = sorted(products, key=lambda p: p.id)
    specs = [s.split() for s in (orderby or "").split(",") if s.strip()]
    for spec in reversed(specs):
        if (
            spec[0] not in _ORDER_FIELDS
            or len(spec) > 2
            or spec[-1] not in (spec[0], "asc", "desc")
        ):
            raise Rejected(400, {"detail": f"Invalid orderby: {orderby}"})
        ordered.sort(key=_ORDER_FIELDS[spec[0]], reverse=spec[-1] == "desc")
    return ordered


def _expand(params: list[tuple[str, str]]) -> frozenset[str]:
    names = {n.strip() for k, v in params if k == "$expand" for n in v.split(",") if n.strip()}
    if names - {"Attributes", "Assets"}:
        raise Rejected(400, {"detail": f"Invalid expand: {', '.join(sorted(names))}"})
    return frozenset(names)


def _context(expand: frozenset[str], entity: bool = False) -> str:
    shown = ",".join(f"{n}()" for n in ("Attributes", "Assets") if n in expand)
    return f"$metadata#Products{f'({shown})' if shown else ''}{'/$entity' if entity else ''}"


def _next_link(service: str, params: list[tuple[str, str]], skip: int) -> str:
    """The recorded next-link forms (see the module docstring)."""
    if not any(k == "$skip" for k, _ in params):
        pairs = [*params, ("$skip", str(skip))]
    else:
        given = dict(params)
        pairs = [(k, given[k]) for k in ("$filter", "$top") if k in given]
        pairs += [("$skip", str(skip))] + [
            (k, given[k]) for k in ("$expand", "$orderby") if k in given
        ]
    return f"{service}Products?{urlencode(pairs)}"


def _product_zip(p: Product) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{p.name}/manifest.safe", f'<?xml version="1.0"?><xfdu name="{p.name}"/>')
    return buffer.getvalue()


def _oauth_error(status: int, error: str, description: str) -> Rejected:
    return Rejected(status, {"error": error, "error_description": description})


class _Keycloak:
    """The CDSE realm's token endpoint: users, clients, issued tokens."""

    def __init__(
        self,
        users: dict[str, str],
        clients: dict[str, str | None],
        lifetimes: tuple[int, int],
        clock: Callable[[], float],
    ) -> None:
        self.users, self.clients, self.clock = users, clients, clock
        self.lifetime, self.refresh_lifetime = lifetimes
        self.access: dict[str, float] = {}
        self.refresh: dict[str, tuple[str, float]] = {}  # token -> (client id, expiry)
        self.issued: list[str] = []  # every access and refresh token handed out (leak scans)

    def valid(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        expiry = self.access.get(token) if scheme.lower() == "bearer" else None
        return expiry is not None and self.clock() < expiry

    def _client(self, form: dict[str, str]) -> str:
        client = form.get("client_id", "")
        if client not in self.clients:
            raise _oauth_error(
                401, "invalid_client", "Invalid client or Invalid client credentials"
            )
        secret = self.clients[client]
        if secret is not None and not secrets.compare_digest(form.get("client_secret", ""), secret):
            raise _oauth_error(
                401, "unauthorized_client", "Invalid client or Invalid client credentials"
            )
        return client

    def grant(self, form: dict[str, str]) -> dict[str, Any]:
        kind = form.get("grant_type", "")
        if kind not in ("password", "client_credentials", "refresh_token"):
            raise _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        client = self._client(form)
        if kind == "password":
            expected = self.users.get(form.get("username", ""))
            if expected is None or not secrets.compare_digest(form.get("password", ""), expected):
                raise _oauth_error(401, "invalid_grant", "Invalid user credentials")
        elif kind == "client_credentials" and self.clients[client] is None:
            raise _oauth_error(401, "unauthorized_client", "Client secret not provided in request")
        elif kind == "refresh_token":
            held = self.refresh.pop(form.get("refresh_token", ""), None)
            if held is None or held[0] != client or self.clock() >= held[1]:
                raise _oauth_error(400, "invalid_grant", "Token is not active")
        return self._issue(client, with_refresh=kind != "client_credentials")

    def _issue(self, client: str, with_refresh: bool) -> dict[str, Any]:
        now = self.clock()
        access = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(48)
        self.access[access] = now + self.lifetime
        self.issued.append(access)
        body: dict[str, Any] = {"access_token": access, "expires_in": self.lifetime}
        body["refresh_expires_in"] = self.refresh_lifetime if with_refresh else 0
        if with_refresh:
            refresh = "eyJhbGciOiJIUzUxMiJ9." + secrets.token_urlsafe(48)
            self.refresh[refresh] = (client, now + self.refresh_lifetime)
            self.issued.append(refresh)
            body["refresh_token"] = refresh
        body |= {"token_type": "Bearer", "not-before-policy": 0}
        if with_refresh:
            body["session_state"] = str(uuid.uuid4())
        return body | {"scope": _SCOPE}


class _Catalogue:
    """One emulated CDSE catalogue: its products and how it answers."""

    def __init__(
        self, products: list[Product], keycloak: _Keycloak, max_top: int, max_skip: int
    ) -> None:
        self.products = products
        self.by_id = {p.id: p for p in products}
        self.quicklooks = {p.quicklook for p in products}
        self.keycloak, self.max_top, self.max_skip = keycloak, max_top, max_skip
        self.deleted = DeletedProducts(products, self.by_id)  # see emulator_deleted
        self.product_size: int | None = None  # downloads: a filler of this size, not the zip
        # Like catalogue.dataspace.copernicus.eu: $value answers 301 to this download host
        # (the same app served on another origin), which checks the token and sends the bytes.
        self.download_host: str | None = None

    async def odata(self, request: Request) -> Response:
        request.app.state.requests += 1
        try:
            if request.path_params["path"].startswith("DeletedProducts"):
                return self.deleted_products(request)
            found = _PATH.match(request.path_params["path"])
            if found is None:
                raise Rejected(404, {"detail": "Not Found"})
            if found["set"] == "Assets":
                if found["key"] not in self.quicklooks or not found["value"]:
                    raise Rejected(404, {"detail": "Not Found"})
                return Response(_JPEG, media_type="image/jpeg")
            if found["key"] is None:
                return self.search(request)
            product = self.by_id.get(found["key"].lower())
            if product is None:
                raise Rejected(404, {"detail": "Not Found"})
            return (
                self.download(request, product) if found["value"] else self.entity(request, product)
            )
        except Rejected as exc:
            return _json(exc.body, exc.status)

    def search(self, request: Request) -> Response:
        params = parse_qsl(request.url.query, keep_blank_values=True)
        given = dict(params)
        request.app.state.queries.append(given)
        top = _int_param(given, "$top", 20, self.max_top)
        skip = _int_param(given, "$skip", 0, self.max_skip)
        expand = _expand(params)
        try:
            matches = compile_filter(given["$filter"]) if "$filter" in given else (lambda p: True)
        except FilterError as exc:
            raise Rejected(400, {"detail": str(exc)}) from None
        found = [p for p in self.products if matches(p)]
        page = _ordered(found, given.get("$orderby"))[skip : skip + top]
        service = f"{request.base_url}odata/v1/"
        body: dict[str, Any] = {"@odata.context": _context(expand)}
        if given.get("$count", "").lower() == "true" and skip == 0:
            body["@odata.count"] = len(found)
        body["value"] = [product_json(p, service, expand) for p in page]
        following = skip + len(page)
        if following < len(found) and page and following <= self.max_skip:
            body["@odata.nextLink"] = _next_link(service, params, following)
        return _json(body)

    def deleted_products(self, request: Request) -> Response:
        service, params = f"{request.base_url}odata/v1/", parse_qsl(request.url.query)
        try:
            return _json(self.deleted.answer(service, params, request.path_params["path"]))
        except Rejected as exc:
            return _json(exc.body, exc.status)

    def entity(self, request: Request, product: Product) -> Response:
        expand = _expand(parse_qsl(request.url.query))
        entity = product_json(product, f"{request.base_url}odata/v1/", expand)
        return _json({"@odata.context": _context(expand, entity=True), **entity})

    def download(self, request: Request, product: Product) -> Response:
        host = self.download_host
        if host and str(request.base_url).rstrip("/") != host.rstrip("/"):
            location = f"{host.rstrip('/')}/odata/v1/Products({product.id})/$value"
            return Response(status_code=301, headers={"Location": location})
        authorization = request.headers.get("authorization", "")
        if not authorization:
            return _json({"detail": "Not authenticated"}, 401, {"WWW-Authenticate": "Bearer"})
        if not self.keycloak.valid(authorization):
            return _json({"detail": "Expired signature!"}, 401, {"WWW-Authenticate": "Bearer"})
        request.app.state.downloads += 1
        size = self.product_size
        seed = product.name.split(".")[0]  # the product name: the same filler as other archives
        payload = Payload(seed, size) if size else Payload.of(_product_zip(product))
        headers = {"Content-Disposition": f'attachment; filename="{product.name}.zip"'}
        return ranged_response(request, payload, "application/zip", headers)

    async def token(self, request: Request) -> Response:
        request.app.state.token_requests += 1
        text = (await request.body()).decode("utf-8", "replace")
        form = dict(parse_qsl(text, keep_blank_values=True))
        request.app.state.grants.append(form.get("grant_type", ""))
        try:
            if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
                raise _oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
            body = self.keycloak.grant(form)
        except Rejected as exc:
            return _json(exc.body, exc.status, {"Cache-Control": "no-store"})
        return _json(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def create_emulator(
    source: list[Item] | Path | str,
    *,
    users: dict[str, str] | None = None,
    clients: dict[str, str | None] | None = None,
    token_lifetime_s: int = 600,
    refresh_lifetime_s: int = 3600,
    max_top: int = 1000,
    max_skip: int = 10000,
    clock: Callable[[], float] = time.time,
    product_size: int | None = None,
) -> Starlette:
    """A CDSE catalogue holding the products of ``source`` (STAC items or a JSON file of them).

    ``users`` (username -> password) may use the password grant with any known client;
    ``clients`` (client id -> secret, None for a public client) default to CDSE's public
    ``cdse-public``. Tokens live ``token_lifetime_s`` (refresh tokens ``refresh_lifetime_s``).
    ``product_size``: ``$value`` serves that many deterministic bytes, generated lazily (see
    :mod:`adapters.emulated_download`), instead of the small zip; ``Range`` works on both.
    ``app.state.downloads`` counts authorised ``$value`` requests.
    """
    products = [product_from_item(item) for item in load_items(source)]
    known: dict[str, str | None] = {"cdse-public": None} if clients is None else dict(clients)
    keycloak = _Keycloak(dict(users or {}), known, (token_lifetime_s, refresh_lifetime_s), clock)
    catalogue = _Catalogue(products, keycloak, max_top, max_skip)
    catalogue.product_size = product_size
    app = Starlette(
        routes=[
            Route("/odata/v1/{path:path}", catalogue.odata, methods=["GET", "HEAD"]),
            Route(TOKEN_PATH, catalogue.token, methods=["POST"]),
        ]
    )
    app.state.requests = 0
    app.state.queries = []
    app.state.token_requests = 0
    app.state.grants = []
    app.state.downloads = 0
    app.state.catalogue = catalogue
    app.state.deleted = catalogue.deleted  # DeletedProducts: .delete(name, cause, when)
    return app
