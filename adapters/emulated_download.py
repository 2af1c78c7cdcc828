"""Product downloads as the emulators serve them: ranged, streamed, never held in memory.

A :class:`Payload` is a product's bytes: either a small real file (the SAFE zip an emulator
builds) or a deterministic filler of any size generated lazily from a seed, block by block,
so that a 1 GiB product costs the emulator one 64 KiB block of memory. Byte ``n`` of a filler
depends only on the seed and ``n``, so any range can be served (and checked by a test) without
producing what precedes it. Emulators seed it with the product name, so every archive holding a
product serves the same bytes for it, as real mirrors do.

:func:`ranged_response` answers ``GET``/``HEAD`` with what the real download services send:
``Accept-Ranges: bytes``, ``Content-Length``, ``Content-Disposition``, ``206`` with
``Content-Range`` for a single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range and ``416``
with ``Content-Range: bytes */<size>`` for an unsatisfiable one (other range forms are ignored
and the whole product is sent, as RFC 9110 allows).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

__all__ = ["Payload", "byte_range", "ranged_response"]

BLOCK = 64 * 1024
CHUNK = 4 * BLOCK  # bytes per chunk sent
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Payload:
    """A product's bytes: ``data`` when given, else ``size`` bytes of filler from ``seed``."""

    seed: str
    size: int
    data: bytes | None = None
    _base: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        base = b"" if self.data is not None else hashlib.shake_256(self.seed.encode()).digest(BLOCK)
        object.__setattr__(self, "_base", base)

    @classmethod
    def of(cls, data: bytes) -> Payload:
        return cls("", len(data), data)

    def _block(self, index: int) -> bytes:
        """Block ``index`` of a filler: the seed's block, stamped with its index."""
        return index.to_bytes(8, "big") + self._base[8:]

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (inclusive), in chunks of at most :data:`CHUNK`."""
        if self.data is not None:
            for at in range(start, end + 1, CHUNK):
                yield self.data[at : min(at + CHUNK, end + 1)]
            return
        at = start
        while at <= end:
            first, last = at // BLOCK, min(end, at + CHUNK - 1) // BLOCK
            blob = b"".join(self._block(i) for i in range(first, last + 1))
            offset = at - first * BLOCK
            piece = blob[offset : offset + min(end, at + CHUNK - 1) - at + 1]
            yield piece
            at += len(piece)

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` (inclusive; None: the last) at once (tests, small files)."""
        return b"".join(self.chunks(start, self.size - 1 if end is None else end))


def byte_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """The ``Range`` header's single range as (first, last); False: ignore; None: unsatisfiable."""
    match = _RANGE.match(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return False
    first, last = match.group(1), match.group(2)
    if first == "":
        start, end = max(0, size - int(last)), size - 1
        return (start, end) if int(last) > 0 and size > 0 else None
    start, end = int(first), min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return False  # syntactically invalid: the header is ignored
    return (start, end) if start < size else None


async def _stream(payload: Payload, start: int, end: int, state: Any) -> AsyncIterator[bytes]:
    """The bytes; ``state.open_downloads`` counts the streams still open (tests watch it)."""
    state.open_downloads = getattr(state, "open_downloads", 0) + 1
    try:
        for chunk in payload.chunks(start, end):
            yield chunk
    finally:
        state.open_downloads -= 1


def ranged_response(
    request: Request, payload: Payload, media: str, headers: dict[str, str]
) -> Response:
    """The product (or the asked range of it) for ``GET`` and ``HEAD``, streamed."""
    size = payload.size
    sent = {"Accept-Ranges": "bytes", **headers}
    status, start, end = 200, 0, size - 1
    bounds = byte_range(request.headers.get("range", ""), size)
    if bounds is None:
        return Response(b"", 416, headers={"Content-Range": f"bytes */{size}"})
    if bounds:
        assert isinstance(bounds, tuple)
        status, (start, end) = 206, bounds
        sent["Content-Range"] = f"bytes {start}-{end}/{size}"
    sent["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD" or end < start:
        return Response(b"", status, headers=sent, media_type=media)
    stream = _stream(payload, start, end, request.app.state)
    return StreamingResponse(stream, status, sent, media_type=media)
