"""The gateway's exceptions and the one table mapping them to HTTP status and STAC bodies."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

log = logging.getLogger("mqs")


class MQSError(Exception):
    """Base of every error the gateway answers deliberately."""

    status = 500
    code = "InternalError"
    headers: dict[str, str] = {}  # response headers (e.g. WWW-Authenticate, Retry-After)

    def __init__(self, description: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.extra = extra or {}


class InvalidRequest(MQSError):
    status = 400
    code = "InvalidParameterValue"


class NotFound(MQSError):
    status = 404
    code = "NotFound"


class UpstreamFailed(MQSError):
    """Every backend asked failed: nothing to answer with."""

    status = 502
    code = "BadGateway"


class UpstreamTimeout(UpstreamFailed):
    status = 504
    code = "GatewayTimeout"


def error_response(status: int, code: str, description: str, **extra: Any) -> Response:
    body = {"code": code, "description": description, **extra}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


FIELD_HINTS = {"bbox": "expected 4 or 6 numbers", "intersects": "expected a GeoJSON geometry"}


def _validation_message(exc: RequestValidationError) -> str:
    """One readable phrase per offending field (pydantic's union details left out)."""
    messages: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # where the field came from, not the field
        field = ".".join(loc[:2])
        messages.setdefault(field, FIELD_HINTS.get(field, str(err.get("msg", "invalid"))))
    parts = [f"{f}: {m}" if f else m for f, m in list(messages.items())[:5]]
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """STAC error bodies (``code`` + ``description``) for every failure, no stack traces."""

    async def on_mqs(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MQSError)
        response = error_response(exc.status, exc.code, exc.description, **exc.extra)
        response.headers.update(exc.headers)
        return response

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, "InvalidParameterValue", _validation_message(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadRequest")
        return error_response(exc.status_code, code, str(exc.detail))

    async def on_any(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "InternalError", "internal error")

    app.add_exception_handler(MQSError, on_mqs)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_any)
