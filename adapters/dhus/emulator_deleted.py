"""The emulated hub's ``DeletedProducts`` entity set (DHuS OData v2).

Shaped after DHuS's ``DeletedProductEntitySet`` (dhus-core): ``Id``, ``Name``, ``CreationDate``,
``FootPrint``, ``Size``, ``IngestionDate``, ``ContentDate``, ``DeletionDate``, ``DeletionCause``,
``Checksum`` and a deferred ``Class``; type ``DHuS.DeletedProduct``; dates ``/Date(ms)/``,
numbers as strings; ``{"d": {"results": [...]}}`` (``__count`` with ``$inlinecount=allpages``),
a single entity ``DeletedProducts('<Id>')`` as ``{"d": {...}}``, ``DeletedProducts/$count`` as
plain text. ``$filter`` is the Products one (:mod:`.emulator_odata`) plus ``DeletionDate`` and
``DeletionCause``; ``$orderby``, ``$top``, ``$skip`` as on Products. No real DeletedProducts
answer was recorded (see tests/fixtures/dhus/PROVENANCE.md); the cause strings are real.

:meth:`DeletedProducts.delete` withdraws a product as a hub does: it leaves ``Products`` and
OpenSearch and appears here (``app.state.deleted`` of the emulator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, cast

from adapters.dhus import emulator_odata as odata
from adapters.dhus.emulator_records import Item, Product, product_from_item


@dataclass(frozen=True, eq=False)
class DeletedRecord(Product):
    """A product the hub withdrew: its record plus when and why."""

    deletion_date: datetime
    deletion_cause: str | None


_OWN: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "DeletionDate": ("date", lambda d: d.deletion_date),
    "DeletionCause": ("str", lambda d: d.deletion_cause),
    "Size": ("num", lambda d: d.content_length),
}
_NOT_HERE = {"ContentType", "ContentLength", "ChildrenNumber", "Online", "OnDemand"}
_NOT_HERE |= {"ModificationDate", "EvictionDate"}
_ORDER = {"DeletionDate", "CreationDate", "IngestionDate", "ContentDate/Start", "ContentDate/End"}
_ORDER |= {"Name", "Id"}


class _DeletedFilter(odata._FilterParser):
    """The Products ``$filter`` language over ``DHuS.DeletedProduct`` properties."""

    def operand(self) -> odata.Typed:
        kind, value = self.tokens[self.k]
        if kind == "name" and self.tokens[self.k + 1] != ("punct", "("):
            if value in _OWN:
                self.k += 1
                return _OWN[value]
            if value in _NOT_HERE:
                raise odata.ODataError(
                    f"Could not find a property named '{value}' in type 'DHuS.DeletedProduct'."
                )
        return super().operand()


def _value(record: DeletedRecord, name: str) -> Any:
    getter = _OWN[name][1] if name in _OWN else odata.PROPERTIES[name][1]
    return getter(record)


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is not None, value)


def _ordered(records: list[DeletedRecord], orderby: str | None) -> list[DeletedRecord]:
    ordered = sorted(records, key=lambda r: r.uuid)
    specs = [s.split() for s in (orderby or "").split(",") if s.strip()]
    for spec in reversed(specs):
        if spec[0] not in _ORDER or len(spec) > 2 or spec[-1] not in (spec[0], "asc", "desc"):
            raise odata.ODataError(f"Invalid $orderby expression '{orderby}'.")
        name = spec[0]
        ordered.sort(key=lambda r: _sort_key(_value(r, name)), reverse=spec[-1] == "desc")
    return ordered


def deleted_json(r: DeletedRecord, service: str) -> dict[str, Any]:
    """One ``DHuS.DeletedProduct`` (``service`` ends with ``/odata/v1/``)."""
    url = f"{service}DeletedProducts('{r.uuid}')"
    entity: dict[str, Any] = {"__metadata": {"id": url, "uri": url, "type": "DHuS.DeletedProduct"}}
    entity |= {"Id": r.uuid, "Name": r.name, "CreationDate": odata.odata_date(r.created)}
    entity |= {"FootPrint": r.fields["gmlfootprint"], "Size": str(r.content_length)}
    entity["IngestionDate"] = odata.odata_date(r.ingestion)
    entity["ContentDate"] = {"__metadata": {"type": "DHuS.TimeRange"}}
    entity["ContentDate"] |= {"Start": odata.odata_date(r.begin), "End": odata.odata_date(r.end)}
    entity |= {"DeletionDate": odata.odata_date(r.deletion_date), "DeletionCause": r.deletion_cause}
    entity["Checksum"] = {"__metadata": {"type": "DHuS.Checksum"}}
    entity["Checksum"] |= {"Algorithm": "MD5", "Value": r.md5}
    return entity | {"Class": {"__deferred": {"uri": f"{url}/Class"}}}


class DeletedProducts:
    """The entity set of one hub; ``delete``/``add`` change it (and the hub's Products)."""

    def __init__(self, products: list[Product], by_uuid: dict[str, Product], max_rows: int) -> None:
        self.products, self.by_uuid, self.max_rows = products, by_uuid, max_rows
        self.records: list[DeletedRecord] = []
        self.queries: list[dict[str, str]] = []  # each request's query parameters

    def delete(self, name: str, cause: str | None, when: datetime | None = None) -> DeletedRecord:
        """Withdraw the hub's product ``name`` (``.SAFE`` optional): gone from every search."""
        name = name.removesuffix(".SAFE")
        product = next((p for p in self.products if p.name == name), None)
        if product is None:
            raise KeyError(f"no product {name!r} on this hub")
        self.products.remove(product)
        self.by_uuid.pop(product.uuid, None)
        return self._record(product, cause, when)

    def add(self, item: Item, cause: str | None, when: datetime | None = None) -> DeletedRecord:
        """A deletion of a product this hub no longer lists (e.g. withdrawn before it started)."""
        return self._record(product_from_item(item), cause, when)

    def _record(self, p: Product, cause: str | None, when: datetime | None) -> DeletedRecord:
        values = {f.name: getattr(p, f.name) for f in fields(Product)}
        moment = (when or datetime.now(UTC)).astimezone(UTC)
        record = DeletedRecord(**values, deletion_date=moment, deletion_cause=cause)
        self.records.append(record)
        return record

    def answer(self, service: str, params: dict[str, str], key: str | None, rest: list[str]) -> Any:
        """The JSON (or, for ``$count``, the text) of ``DeletedProducts[('<key>')][/$count]``."""
        self.queries.append(dict(params))
        if key is not None:
            record = next((r for r in self.records if r.uuid == key), None)
            if record is None or rest:
                raise odata.ODataError(
                    f"Invalid key ({key}) to access DeletedProducts", 404, "InvalidKeyException"
                )
            return {"d": deleted_json(record, service)}
        found = self._matching(params.get("$filter"))
        if rest == ["$count"]:
            return str(len(found))
        if rest:
            raise odata.ODataError(f"Resource not found for the segment '{rest[0]}'.", 404)
        top, skip, counted = odata.page_params(params, self.max_rows)
        page = _ordered(found, params.get("$orderby"))[skip : skip + top]
        body: dict[str, Any] = {"__count": str(len(found))} if counted else {}
        return {"d": body | {"results": [deleted_json(r, service) for r in page]}}

    def _matching(self, text: str | None) -> list[DeletedRecord]:
        if not text:
            return list(self.records)
        matches = cast(Callable[[Any], bool], _DeletedFilter(text).parse())
        return [r for r in self.records if matches(r)]
