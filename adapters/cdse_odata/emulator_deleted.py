"""The emulated catalogue's ``/odata/v1/DeletedProducts`` (CDSE).

Modelled on CDSE's documentation of the endpoint ("requests are built as for Products"): the
``Products`` JSON (``@odata.context``, ``value``, ``@odata.count`` with ``$count=true`` on a
first page, ``@odata.nextLink``) whose entities carry the documented properties ``Id``,
``Name``, ``ContentType``, ``ContentLength``, ``OriginDate``, ``DeletionDate``,
``DeletionCause``, ``Checksum``, ``ContentDate``, ``Footprint``, ``GeoFootprint``
(``$expand=Attributes`` adds attributes). ``$filter`` is the Products language
(:mod:`.emulator_filter`) plus ``DeletionDate`` and ``DeletionCause``; ``$orderby`` accepts the
documented ``ContentDate/Start``, ``ContentDate/End`` and ``DeletionDate``; ``$top`` (20 by
default, at most 1000) and ``$skip`` (at most 10000) fail with FastAPI's 422 as on Products.
No real DeletedProducts answer was recorded (tests/fixtures/cdse/PROVENANCE.md).

:meth:`DeletedProducts.delete` withdraws a product as CDSE does: it leaves ``Products`` and
appears here (``app.state.deleted`` of the emulator).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlencode

from adapters.cdse_odata import emulator_filter as flt
from adapters.cdse_odata.emulator_errors import Rejected, int_param
from adapters.cdse_odata.emulator_records import Item, Product, iso6, product_from_item
from adapters.cdse_odata.emulator_records import product_json as products_json


@dataclass(frozen=True, eq=False)
class DeletedRecord(Product):
    """A product CDSE withdrew: its record plus when and why."""

    deletion_date: datetime
    deletion_cause: str | None


_OWN: dict[str, flt.Typed] = {
    "DeletionDate": ("date", lambda p, a: cast(DeletedRecord, p).deletion_date),
    "DeletionCause": ("str", lambda p, a: cast(DeletedRecord, p).deletion_cause),
}
_ORDER: dict[str, Callable[[DeletedRecord], Any]] = {
    "ContentDate/Start": lambda r: r.start,
    "ContentDate/End": lambda r: r.end,
    "DeletionDate": lambda r: r.deletion_date,
}
_PATH = re.compile(r"^DeletedProducts(?:\('?(?P<key>[0-9a-fA-F-]{36})'?\))?$")
_SHOWN = ("Id", "Name", "ContentType", "ContentLength", "OriginDate")
_SHOWN_AFTER = ("Checksum", "ContentDate", "Footprint", "GeoFootprint", "Attributes")


class _DeletedFilter(flt._Parser):
    def path(self, first: str) -> flt.Typed:
        if first in _OWN and not self.peek("punct", "/"):
            return _OWN[first]
        return super().path(first)


def deleted_json(r: DeletedRecord, service: str, expand: bool = False) -> dict[str, Any]:
    """One deleted product, in the documented property order."""
    full = products_json(r, service, frozenset({"Attributes"}) if expand else frozenset())
    entity: dict[str, Any] = {"@odata.mediaContentType": "application/octet-stream"}
    entity |= {k: full[k] for k in _SHOWN}
    entity |= {"DeletionDate": iso6(r.deletion_date), "DeletionCause": r.deletion_cause}
    return entity | {k: full[k] for k in _SHOWN_AFTER if k in full}


class DeletedProducts:
    """The catalogue's deletions; ``delete``/``add`` change them (and its Products)."""

    def __init__(self, products: list[Product], by_id: dict[str, Product]) -> None:
        self.products, self.by_id = products, by_id
        self.records: list[DeletedRecord] = []
        self.queries: list[dict[str, str]] = []  # each request's query parameters

    def delete(self, name: str, cause: str | None, when: datetime | None = None) -> DeletedRecord:
        """Withdraw the catalogue's product ``name`` (``.SAFE`` optional): gone from Products."""
        name = name if name.endswith(".SAFE") else f"{name}.SAFE"
        product = next((p for p in self.products if p.name == name), None)
        if product is None:
            raise KeyError(f"no product {name!r} in this catalogue")
        self.products.remove(product)
        self.by_id.pop(product.id, None)
        return self._record(product, cause, when)

    def add(self, item: Item, cause: str | None, when: datetime | None = None) -> DeletedRecord:
        """A deletion of a product this catalogue no longer lists."""
        return self._record(product_from_item(item), cause, when)

    def _record(self, p: Product, cause: str | None, when: datetime | None) -> DeletedRecord:
        values = {f.name: getattr(p, f.name) for f in fields(Product)}
        moment = (when or datetime.now(UTC)).astimezone(UTC)
        record = DeletedRecord(**values, deletion_date=moment, deletion_cause=cause)
        self.records.append(record)
        return record

    def answer(self, service: str, params: list[tuple[str, str]], path: str) -> Any:
        """The JSON of ``DeletedProducts`` or ``DeletedProducts(<Id>)``; :class:`Rejected`."""
        located = _PATH.match(path)
        if located is None:
            raise Rejected(404, {"detail": "Not Found"})
        key, given = located["key"], dict(params)
        self.queries.append(given)
        expand = given.get("$expand") == "Attributes"
        if key is not None:
            record = next((r for r in self.records if r.id == key.lower()), None)
            if record is None:
                raise Rejected(404, {"detail": "Not Found"})
            context = "$metadata#DeletedProducts/$entity"
            return {"@odata.context": context, **deleted_json(record, service, expand)}
        top = int_param(given, "$top", 20, 1000)
        skip = int_param(given, "$skip", 0, 10000)
        found = self._matching(given.get("$filter"))
        page = _ordered(found, given.get("$orderby"))[skip : skip + top]
        body: dict[str, Any] = {"@odata.context": "$metadata#DeletedProducts"}
        if given.get("$count", "").lower() == "true" and skip == 0:
            body["@odata.count"] = len(found)
        body["value"] = [deleted_json(r, service, expand) for r in page]
        if skip + len(page) < len(found) and page:
            pairs = [(k, v) for k, v in params if k != "$skip"] + [("$skip", str(skip + top))]
            body["@odata.nextLink"] = f"{service}DeletedProducts?{urlencode(pairs)}"
        return body

    def _matching(self, text: str | None) -> list[DeletedRecord]:
        if not text:
            return list(self.records)
        try:
            matches = _DeletedFilter(text).parse()
        except (ValueError, IndexError) as exc:
            raise Rejected(400, {"detail": str(exc)}) from None
        return [r for r in self.records if matches(r)]


def _ordered(records: list[DeletedRecord], orderby: str | None) -> list[DeletedRecord]:
    ordered = sorted(records, key=lambda r: r.id)
    specs = [s.split() for s in (orderby or "").split(",") if s.strip()]
    for spec in reversed(specs):
        if spec[0] not in _ORDER or len(spec) > 2 or spec[-1] not in (spec[0], "asc", "desc"):
            raise Rejected(400, {"detail": f"Invalid orderby: {orderby}"})
        ordered.sort(key=_ORDER[spec[0]], reverse=spec[-1] == "desc")
    return ordered
