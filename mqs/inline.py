"""Build stac-fastapi's GET request models on the event loop, not in FastAPI's thread pool.

stac-fastapi declares each GET endpoint's parameters as an attrs class (``APIRequest``) used as
a dependency (``request_data=Depends(Model)``). FastAPI runs every class dependency in its
thread pool, since it cannot know that a constructor does not block: each GET ``/search``,
``/collections/{id}/items``, ``/collections`` ... then waits for a worker thread and back, and
that thread contends for the GIL with the event loop (measured: ~1 ms of CPU and ~10 ms of
latency per GET search under load). These constructors only store and check the parsed query
parameters (no I/O), so :func:`inline_request_models` has the endpoints depend on a coroutine
function with the model's signature instead: FastAPI parses and validates the same query
parameters and awaits it on the event loop.

FastAPI builds an included route's handler from its endpoint's signature when the route first
answers, so this runs on the routers right after the app is built, before it serves.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute, APIRouter
from stac_fastapi.api.app import StacApi
from stac_fastapi.types.search import APIRequest


def on_loop(model: type[APIRequest]) -> Callable[..., Awaitable[APIRequest]]:
    """A coroutine function taking ``model``'s parameters (same signature) and building it."""

    async def build(**kwargs: Any) -> APIRequest:
        return model(**kwargs)

    build.__name__ = build.__qualname__ = model.__name__
    build.__doc__ = model.__doc__
    build.__signature__ = inspect.signature(model, eval_str=True)  # type: ignore[attr-defined]
    return build


def _inlined(endpoint: Callable[..., Any]) -> bool:
    """Point ``endpoint``'s ``Depends(<APIRequest class>)`` parameters at :func:`on_loop`."""
    signature = inspect.signature(endpoint)
    changed = False
    parameters = []
    for parameter in signature.parameters.values():
        depends = parameter.default
        model = depends.dependency if isinstance(depends, params.Depends) else None
        if inspect.isclass(model) and issubclass(model, APIRequest):
            parameter = parameter.replace(default=params.Depends(on_loop(model)))
            changed = True
        parameters.append(parameter)
    if changed:
        endpoint.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return changed


def inline_request_models(api: StacApi) -> int:
    """Every endpoint of ``api`` and its extensions built from an ``APIRequest`` model gets it
    on the event loop; how many endpoints were changed."""
    routers = [api.router]
    for extension in api.extensions:
        router = getattr(extension, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return sum(
        _inlined(route.endpoint)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    )
