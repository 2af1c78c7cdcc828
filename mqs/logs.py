"""Structured logs (structlog): one JSON object per line, each carrying the request id.

:func:`configure_logging` routes the standard library's loggers (``mqs.*``, uvicorn, httpx)
through the same structlog processors, so every line of a process has one format. The request
id of the request being served lives in a context variable: set by the middleware in
:mod:`mqs.ops`, added to every line logged while serving it and sent to backends as
``X-Request-ID`` (:func:`request_id_header`).

Nothing secret is logged: values of keys that name credentials are replaced (also in nested
fields, and quoted after such a key in text), URLs lose their user info and query string (a
backend URL's query could hold an API key), and ``Bearer``/``Basic`` header values written out in
a message or an exception become ``[redacted]``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

import httpx
import orjson
import structlog
from structlog.typing import EventDict, Processor

if TYPE_CHECKING:  # only types: the logs stay importable from the lowest layers
    from mqs.merger import Outcome
    from mqs.query import SearchQuery

LogFormat = Literal["json", "console"]
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_SECRET_KEYS = re.compile(r"authorization|password|passwd|secret|token|cookie|api[-_]?key", re.I)
_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^\s/?#@]*@)?([^\s?#]*)(\?[^\s#\"']*)?", re.I)
# An Authorization header value written out in text (a library's message, an exception).
_HEADER_VALUE = re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.I)
# A quoted value of a credential-named key in a dict or JSON written out in text.
_QUOTED_SECRET = re.compile(
    r"""([\w-]*(?:authorization|password|passwd|secret|token|api[-_]?key)['"]?\s*[:=]\s*)"""
    r"""(['"])[^'"]*\2""",
    re.I,
)
REDACTED = "[redacted]"

request_id: ContextVar[str | None] = ContextVar("mqs_request_id", default=None)


def accept_request_id(value: str | None) -> str:
    """The client's ``X-Request-ID`` when it is a sane token, else a new random id."""
    if value is not None and _SANE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


async def request_id_header(request: httpx.Request) -> None:
    """httpx request hook: the current request id goes to the backend as ``X-Request-ID``."""
    rid = request_id.get()
    if rid is not None:
        request.headers[REQUEST_ID_HEADER] = rid


def _scrub_text(text: str) -> str:
    if "://" in text:
        text = _URL.sub(lambda m: m.group(1) + m.group(3), text)
    text = _QUOTED_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text)
    return _HEADER_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _scrubbed(key: str, value: Any, depth: int = 0) -> Any:
    """``value`` without credentials: by key name, in URLs and header values, in nested fields."""
    if _SECRET_KEYS.search(key) and key != "request_id":
        return REDACTED
    if isinstance(value, str):
        return _scrub_text(value)
    if depth < 4 and isinstance(value, Mapping):
        return {k: _scrubbed(str(k), v, depth + 1) for k, v in value.items()}
    if depth < 4 and isinstance(value, list | tuple):
        return [_scrubbed("", v, depth + 1) for v in value]
    return value


def _redact(_: Any, __: str, event: EventDict) -> EventDict:
    """Credentials never reach a log line: by key name (at any depth of a logged field), inside
    URLs (user info, query) and as ``Bearer``/``Basic`` header values in any string."""
    for key, value in event.items():
        event[key] = _scrubbed(key, value)
    return event


def _drop_color(_: Any, __: str, event: EventDict) -> EventDict:
    event.pop("color_message", None)  # uvicorn's coloured copy of the message
    return event


def _add_process(_: Any, __: str, event: EventDict) -> EventDict:
    event.setdefault("pid", os.getpid())  # which worker of ``mqs serve --workers N``
    return event


def _add_request_id(_: Any, __: str, event: EventDict) -> EventDict:
    rid = request_id.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


_PRE_CHAIN: list[Processor] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),  # fields logged by structlog loggers (render_to_log_kwargs)
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    _add_request_id,
    _add_process,
    _drop_color,
]
_TO_STDLIB: list[Processor] = [
    structlog.stdlib.filter_by_level,  # cheap when the level is off: nothing else runs
    structlog.stdlib.render_to_log_kwargs,
]


def get_logger(name: str) -> Any:
    """A structlog logger writing through the standard library logger ``name``."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_TO_STDLIB,
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def _json(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=repr).decode()


def configure_logging(level: str = "info", fmt: LogFormat = "json") -> None:
    """Every logger of the process writes ``fmt`` lines to stderr from ``level`` up."""
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=_TO_STDLIB,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_PRE_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn.access stays as uvicorn set it (off)
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its lines carry full backend URLs


_search_log = get_logger("mqs.search")


def search_line(
    query: SearchQuery,
    first_page: bool,
    outcomes: Mapping[str, Outcome],
    items: int,
) -> MutableMapping[str, Any]:
    """The fields of a search's log line: what was asked (no free text) and each backend's part."""
    return {
        "collections": list(query.collections),
        "first_page": first_page,
        "limit": query.limit,
        "items": items,
        "backends": {
            bid: {"status": o.status, "items": o.items, "requests": o.requests, "ms": round(o.ms)}
            for bid, o in sorted(outcomes.items())
        },
    }


def log_search(
    query: SearchQuery, first_page: bool, outcomes: Mapping[str, Outcome], items: int
) -> None:
    """One ``search`` line per search page, with its backends' outcomes."""
    _search_log.info("search", **search_line(query, first_page, outcomes, items))
