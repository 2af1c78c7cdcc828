"""Build stac-fastapi's GET request models on the event loop, not in FastAPI's thread pool.

stac-fastapi declares each GET endpoint's parameters as an attrs class (``APIRequest``) used as
a dependency. FastAPI runs every class dependency in its thread pool, since it cannot know that
a constructor does not block: each GET ``/search`` or ``/collections/{id}/items`` then pays a
hand-off to a worker thread and back, and the thread contends for the GIL with the event loop.
These constructors only store and check the parsed query parameters (no I/O), so
:func:`inline_request_models` has FastAPI await a coroutine that calls them instead; the
parameters FastAPI parses and validates are unchanged (they come from the class's signature,
read when the route was built).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from stac_fastapi.types.search import APIRequest


def on_loop(model: type[APIRequest]) -> Callable[..., Awaitable[APIRequest]]:
    """A coroutine function building ``model`` from the same keyword arguments."""

    async def build(**params: Any) -> APIRequest:
        return model(**params)

    build.__name__ = build.__qualname__ = model.__name__
    build.__doc__ = model.__doc__
    return build


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def inline_request_models(app: FastAPI) -> int:
    """Every route's ``APIRequest`` dependency built on the event loop; how many were changed."""
    changed = 0
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for sub in _dependants(route.dependant):
            call = sub.call
            if inspect.isclass(call) and issubclass(call, APIRequest):
                sub.call = on_loop(call)
                changed += 1
    return changed
