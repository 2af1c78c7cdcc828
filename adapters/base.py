"""The adapter contract: the only thing the federation core knows about a backend kind.

An adapter translates a normalised :class:`~mqs.query.SearchQuery` into its backend's request,
runs it over the injected HTTP client and turns the answer into STAC item dicts. Adapters keep
no state between calls: the page state travels inside the gateway's paging token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import httpx

    from mqs.cache import Cache
    from mqs.config import BackendConfig
    from mqs.query import SearchQuery, SortField

PageState = dict[str, Any]
"""A backend's own cursor (JSON-serialisable): what to send to get one page."""


class Hit(NamedTuple):
    """One backend item and the Sentinel product name the federation knows it by."""

    product_id: str
    item: dict[str, Any]


class BackendPage(NamedTuple):
    """One page of a backend's answer, in the backend's own (requested) order."""

    hits: list[Hit]
    next_state: PageState | None
    matched: int | None = None


@dataclass(frozen=True)
class Capabilities:
    """Which parts of a :class:`SearchQuery` a backend evaluates exactly itself.

    Parts not listed are evaluated by the gateway on the returned items. ``filter`` says
    which top-level clauses of the CQL2 filter (see :mod:`mqs.cql`) the backend evaluates
    exactly; the adapter translates exactly those and the gateway evaluates the others.
    """

    pushdown: frozenset[str] = field(default_factory=frozenset)
    max_page_size: int = 1000
    filter: Callable[[dict[str, Any]], bool] | None = None
    # The order the backend returns: the leading ``sortby`` keys it sorts by, exactly as the
    # gateway orders (missing values last in either direction). ``sortable`` None: any field.
    sortable: frozenset[str] | None = frozenset({"datetime"})
    sort_keys: int = 1
    sort_directions: frozenset[str] = frozenset({"asc", "desc"})

    def sorted_prefix(self, sortby: tuple[SortField, ...]) -> int:
        """How many leading keys of ``sortby`` the backend's order honours."""
        count = 0
        for sort in sortby[: self.sort_keys]:
            known = self.sortable is None or sort.field in self.sortable
            if not known or sort.direction not in self.sort_directions:
                break
            count += 1
        return count


class NoOptions(BaseModel):
    """Adapter kinds without options reject any."""

    model_config = ConfigDict(extra="forbid")


class Adapter(Protocol):
    """What every backend kind implements (see ``adapters.stac.adapter`` for the model)."""

    Options: ClassVar[type[BaseModel]]
    capabilities: Capabilities

    async def search(self, query: SearchQuery, state: PageState | None, limit: int) -> BackendPage:
        """One page of results: the first when ``state`` is None, else the page ``state`` names."""
        ...

    async def get_item(self, collection: str, product_id: str) -> Hit | None:
        """The backend's copy of one product, or None when it does not hold it."""
        ...

    async def describe(self, collection: str) -> dict[str, Any] | None:
        """The backend's own metadata of a canonical collection (for extents), if it has any."""
        ...


class AdapterFactory(Protocol):
    """An adapter class: built from its backend's config, the shared HTTP client and cache."""

    Options: type[BaseModel]

    def __call__(
        self, backend: BackendConfig, client: httpx.AsyncClient, cache: Cache | None = None
    ) -> Adapter: ...


class BackendError(Exception):
    """A backend could not answer. Messages never contain credentials or full URLs."""

    kind = "error"

    def __init__(self, backend: str, message: str, status: int | None = None) -> None:
        super().__init__(f"backend {backend!r}: {message}")
        self.backend = backend
        self.status = status


class BackendTimeout(BackendError):
    """The backend did not answer within its timeout."""

    kind = "timeout"


class BackendUnavailable(BackendError):
    """Connection refused or reset, or a 5xx answer."""

    kind = "unavailable"


class BadBackendResponse(BackendError):
    """The backend answered something that is not what its API promises."""

    kind = "bad-response"
