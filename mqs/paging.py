"""Stateless paging tokens: signed, versioned, bound to one search and one configuration.

A token holds, per backend, the page state of the first item not yet returned and the offset
into that page, plus the merge frontier (the sort key and product id of the last item
returned). Any gateway instance sharing the secret can continue it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from mqs.errors import InvalidRequest

VERSION = "m1"
MAX_TOKEN_LENGTH = 16_384


@dataclass(frozen=True)
class Cursor:
    """Where a backend's stream resumes: page ``state`` (None: first page), skip ``offset``."""

    state: dict[str, Any] | None
    offset: int = 0
    done: bool = False
    failed: str | None = None


@dataclass(frozen=True)
class Position:
    """The merge frontier and every backend's cursor."""

    frontier: list[Any] | None  # None: nothing returned yet (a page that ended early)
    last_id: str | None
    cursors: dict[str, Cursor]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenCodec:
    """Encodes and verifies tokens with HMAC-SHA256 over a shared secret."""

    def __init__(self, secret: bytes, config_fingerprint: str, ttl_s: float) -> None:
        self._secret = secret
        self._config = config_fingerprint
        self._ttl = ttl_s

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._secret, f"{VERSION}.{body}".encode(), hashlib.sha256).digest()
        return _b64(mac[:20])

    def encode(self, position: Position, search: dict[str, Any]) -> str:
        payload = {
            "f": position.frontier,
            "l": position.last_id,
            "b": {
                bid: [c.state, c.offset, c.done, c.failed] for bid, c in position.cursors.items()
            },
            "q": search_digest(search),
            "c": self._config,
            "t": int(time.time()),
        }
        body = _b64(zlib.compress(orjson.dumps(payload), 6))
        return f"{VERSION}.{body}.{self._sign(body)}"

    def decode(self, token: str, search: dict[str, Any]) -> Position:
        """The position a token names; any doubt about it is a 400."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidRequest("invalid paging token: malformed")
        version, body, mac = token.split(".")
        if version != VERSION:
            raise InvalidRequest("invalid paging token: unsupported version")
        if not hmac.compare_digest(mac, self._sign(body)):
            raise InvalidRequest("invalid paging token: signature does not match")
        try:
            payload = orjson.loads(zlib.decompress(_unb64(body), bufsize=MAX_TOKEN_LENGTH * 8))
            cursors = {
                str(bid): Cursor(state=c[0], offset=int(c[1]), done=bool(c[2]), failed=c[3])
                for bid, c in payload["b"].items()
            }
            frontier = None if payload["f"] is None else list(payload["f"])
            last_id = None if payload["l"] is None else str(payload["l"])
            position = Position(frontier, last_id, cursors)
        except Exception:
            raise InvalidRequest("invalid paging token: malformed") from None
        if payload.get("c") != self._config:
            raise InvalidRequest("paging token is from another configuration: search again")
        if time.time() - float(payload.get("t", 0)) > self._ttl:
            raise InvalidRequest("paging token has expired: search again")
        if payload.get("q") != search_digest(search):
            raise InvalidRequest("paging token belongs to a different search")
        return position


def search_digest(search: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(search, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
