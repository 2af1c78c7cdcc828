"""DHuS OData v1: the ``$filter`` language subset and the JSON (verbose, ``d``) entities.

``$filter`` supports ``and``/``or``/``not``, parentheses, ``eq ne lt le gt ge`` on the product
properties, ``'string'`` (quote doubled inside), ``datetime'...'`` (UTC), ``true``/``false``,
numbers, ``substringof``/``startswith``/``endswith``/``tolower``/``toupper``. Entities are shaped
like the recorded 2023 apihub answers: numbers as strings, ``/Date(ms)/`` dates, ``__deferred``
navigation links, attributes named and sorted as DHuS shows them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from adapters.dhus.emulator_records import Product, iso_ms, solr_text

Getter = Callable[[Product], Any]

PROPERTIES: dict[str, tuple[str, Getter]] = {
    "Id": ("str", lambda p: p.uuid),
    "Name": ("str", lambda p: p.name),
    "ContentType": ("str", lambda p: "application/octet-stream"),
    "ContentLength": ("num", lambda p: p.content_length),
    "ChildrenNumber": ("num", lambda p: 2),
    "Online": ("bool", lambda p: True),
    "OnDemand": ("bool", lambda p: False),
    "CreationDate": ("date", lambda p: p.created),
    "IngestionDate": ("date", lambda p: p.ingestion),
    "ModificationDate": ("date", lambda p: p.created),
    "EvictionDate": ("date", lambda p: None),
    "ContentDate/Start": ("date", lambda p: p.begin),
    "ContentDate/End": ("date", lambda p: p.end),
}
_TOKEN = re.compile(
    r"\s*(?:datetime'(?P<date>[^']*)'|'(?P<str>(?:[^']|'')*)'|(?P<num>-?\d+(?:\.\d+)?)[LlMmDdFf]?"
    r"|(?P<name>[A-Za-z_][\w/]*)|(?P<punct>[(),]))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
    "lt": lambda a, b: a is not None and b is not None and bool(a < b),
    "le": lambda a, b: a is not None and b is not None and bool(a <= b),
    "gt": lambda a, b: a is not None and b is not None and bool(a > b),
    "ge": lambda a, b: a is not None and b is not None and bool(a >= b),
}
_FUNCTIONS: dict[str, tuple[str, Callable[..., Any]]] = {
    "substringof": ("bool", lambda needle, text: needle in text),
    "startswith": ("bool", lambda text, prefix: text.startswith(prefix)),
    "endswith": ("bool", lambda text, suffix: text.endswith(suffix)),
    "tolower": ("str", lambda text: text.lower()),
    "toupper": ("str", lambda text: text.upper()),
}


class ODataError(Exception):
    """A request DHuS's OData service rejects: message and HTTP status."""

    def __init__(self, message: str, status: int = 400, cause: str | None = None) -> None:
        super().__init__(message)
        self.status, self.cause = status, cause


Typed = tuple[str, Getter]  # ("str" | "num" | "bool" | "date" | "null", value getter)


class _FilterParser:
    def __init__(self, text: str) -> None:
        self.text, self.tokens, pos = text, list[tuple[str, str]](), 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise ODataError(f"Invalid token detected at position {pos + 1} in '{text}'.")
            kind = match.lastgroup or ""
            value = match.group(kind)
            self.tokens.append((kind, value.replace("''", "'") if kind == "str" else value))
            pos = match.end()
        self.tokens.append(("end", ""))
        self.k = 0

    def peek(self, kind: str, value: str | None = None) -> bool:
        tok = self.tokens[self.k]
        return tok[0] == kind and (value is None or tok[1] == value)

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.peek(kind, value):
            found = self.tokens[self.k][1] or "end of expression"
            raise ODataError(f"Invalid filter expression: unexpected '{found}' in '{self.text}'.")
        self.k += 1
        return self.tokens[self.k - 1][1]

    def parse(self) -> Callable[[Product], bool]:
        kind, get = self.disjunction()
        self.take("end")
        if kind != "bool":
            raise ODataError(f"Invalid filter expression: '{self.text}' is not a boolean.")
        return lambda p: bool(get(p))

    def disjunction(self) -> Typed:
        left = self.conjunction()
        while self.peek("name", "or"):
            self.k += 1
            left = ("bool", _either(left[1], self.conjunction()[1]))
        return left

    def conjunction(self) -> Typed:
        left = self.negation()
        while self.peek("name", "and"):
            self.k += 1
            left = ("bool", _both(left[1], self.negation()[1]))
        return left

    def negation(self) -> Typed:
        if self.peek("name", "not"):
            self.k += 1
            inner = self.negation()
            return ("bool", lambda p: not inner[1](p))
        return self.comparison()

    def comparison(self) -> Typed:
        left = self.operand()
        if self.tokens[self.k][0] == "name" and self.tokens[self.k][1] in _COMPARE:
            op = _COMPARE[self.take("name")]
            right = self.operand()
            if "null" not in (left[0], right[0]) and left[0] != right[0]:
                raise ODataError(f"Incompatible operand types {left[0]} and {right[0]}.")
            return ("bool", lambda p: op(left[1](p), right[1](p)))
        return left

    def operand(self) -> Typed:
        kind, value = self.tokens[self.k]
        if kind == "punct" and value == "(":
            self.k += 1
            inner = self.disjunction()
            self.take("punct", ")")
            return inner
        self.k += 1
        if kind == "str":
            return ("str", lambda p: value)
        if kind == "num":
            number = float(value) if "." in value else int(value)
            return ("num", lambda p: number)
        if kind == "date":
            return ("date", _const(_datetime(value)))
        if kind == "name" and value in ("true", "false", "null"):
            return ("null", _const(None)) if value == "null" else ("bool", _const(value == "true"))
        if kind == "name" and self.peek("punct", "("):
            return self.call(value)
        if kind == "name" and value in PROPERTIES:
            return PROPERTIES[value]
        self.k -= 1
        raise ODataError(f"Could not find a property named '{value}' in type 'DHuS.Product'.")

    def call(self, name: str) -> Typed:
        if name not in _FUNCTIONS:
            raise ODataError(f"Unknown function '{name}' in '{self.text}'.")
        self.take("punct", "(")
        args = [self.disjunction()]
        while self.peek("punct", ","):
            self.k += 1
            args.append(self.disjunction())
        self.take("punct", ")")
        if any(kind not in ("str", "null") for kind, _ in args):
            raise ODataError(f"Function '{name}' expects string arguments.")
        kind, function = _FUNCTIONS[name]
        getters = [get for _, get in args]
        return (kind, lambda p: function(*(get(p) or "" for get in getters)))


def _either(a: Getter, b: Getter) -> Getter:
    return lambda p: bool(a(p)) or bool(b(p))


def _both(a: Getter, b: Getter) -> Getter:
    return lambda p: bool(a(p)) and bool(b(p))


def _const(value: Any) -> Getter:
    return lambda p: value


def _datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.rstrip("Z"))
    except ValueError:
        raise ODataError(f"Invalid datetime literal '{text}'.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def compile_filter(text: str) -> Callable[[Product], bool]:
    """``$filter`` -> a predicate over products; :class:`ODataError` when invalid."""
    return _FilterParser(text).parse()


def _sort_key(get: Getter) -> Callable[[Product], tuple[bool, Any]]:
    return lambda p: (get(p) is not None, get(p))


def order_products(products: list[Product], orderby: str | None) -> list[Product]:
    """``$orderby`` (``Field [asc|desc]``, comma-separated), ties by ``Id``."""
    ordered = sorted(products, key=lambda p: p.uuid)
    specs = [s.split() for s in (orderby or "").split(",") if s.strip()]
    for spec in reversed(specs):
        if spec[0] not in PROPERTIES or len(spec) > 2 or spec[-1] not in (spec[0], "asc", "desc"):
            raise ODataError(f"Invalid $orderby expression '{orderby}'.")
        ordered.sort(key=_sort_key(PROPERTIES[spec[0]][1]), reverse=spec[-1] == "desc")
    return ordered


# --- JSON --------------------------------------------------------------------------------------
def page_params(params: Mapping[str, str], max_rows: int) -> tuple[int, int, bool]:
    """``$top``, ``$skip`` and whether ``$inlinecount=allpages``, checked as a hub does."""
    try:
        top, skip = int(params.get("$top", max_rows)), int(params.get("$skip", 0))
    except ValueError:
        raise ODataError("Invalid $top or $skip value.") from None
    if not 0 <= top <= max_rows or skip < 0:
        raise ODataError(f"The value of $top must be between 0 and {max_rows}.")
    count = params.get("$inlinecount", "none")
    if count not in ("allpages", "none"):
        raise ODataError(f"Invalid value '{count}' for $inlinecount.")
    return top, skip, count == "allpages"


def odata_date(moment: datetime | None) -> str | None:
    return None if moment is None else f"/Date({round(moment.timestamp() * 1000)})/"


def _deferred(url: str, *names: str) -> dict[str, Any]:
    return {name: {"__deferred": {"uri": f"{url}/{name}"}} for name in names}


def _media(url: str, kind: str) -> dict[str, str]:
    meta = {"id": url, "uri": url, "type": kind, "content_type": "application/octet-stream"}
    return meta | {"media_src": f"{url}/$value", "edit_media": f"{url}/$value"}


def product_json(p: Product, service: str, expand: bool = False) -> dict[str, Any]:
    """One ``DHuS.Product`` (``service`` ends with ``/odata/v1/``)."""
    url = f"{service}Products('{p.uuid}')"
    entity: dict[str, Any] = {"__metadata": _media(url, "DHuS.Product"), "Id": p.uuid}
    entity |= {"Name": p.name, "ContentType": "application/octet-stream"}
    entity |= {"ContentLength": str(p.content_length), "ChildrenNumber": "2", "Value": None}
    entity |= {"CreationDate": odata_date(p.created), "IngestionDate": odata_date(p.ingestion)}
    entity |= {"ModificationDate": odata_date(p.created), "EvictionDate": None}
    entity |= {"Online": True, "OnDemand": False}
    entity["ContentDate"] = {"__metadata": {"type": "DHuS.TimeRange"}}
    entity["ContentDate"] |= {"Start": odata_date(p.begin), "End": odata_date(p.end)}
    entity["Checksum"] = {"__metadata": {"type": "DHuS.Checksum"}}
    entity["Checksum"] |= {"Algorithm": "MD5", "Value": p.md5}
    entity["ContentGeometry"] = p.fields["gmlfootprint"]
    entity |= _deferred(url, "Products", "Nodes", "Attributes", "Class")
    if expand:
        entity["Attributes"] = {"results": attributes_json(p, url)}
    return entity


def attributes_json(p: Product, product_url: str) -> list[dict[str, Any]]:
    return [attribute_json(product_url, *row) for row in attribute_rows(p)]


def attribute_json(product_url: str, name: str, value: str, category: str) -> dict[str, Any]:
    url = f"{product_url}/Attributes('{quote(name)}')"
    entity: dict[str, Any] = {"__metadata": {"id": url, "uri": url, "type": "DHuS.Attribute"}}
    entity |= {"Id": name, "Name": name, "ContentType": "text/plain"}
    return entity | {"ContentLength": str(len(value)), "Value": value, "Category": category}


def node_json(url: str, name: str, content_type: str, length: int, children: int) -> dict[str, Any]:
    """One ``DHuS.Node`` (a file or a directory of the SAFE product)."""
    entity: dict[str, Any] = {"__metadata": _media(url, "DHuS.Node"), "Id": name, "Name": name}
    entity |= {"ContentType": content_type, "ContentLength": str(length)}
    entity |= {"ChildrenNumber": str(children), "Value": None}
    return entity | _deferred(url, "Nodes", "Attributes", "Class")


def error_json(message: str) -> dict[str, Any]:
    return {"error": {"code": None, "message": {"lang": "en", "value": message}}}


def error_xml(message: str) -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8'?><error xmlns=\"http://schemas.microsoft.com/"
        f'ado/2007/08/dataservices/metadata"><code/><message xml:lang="en">{escape(message)}'
        "</message></error>"
    ).encode()


# --- attributes --------------------------------------------------------------------------------
def _common_rows(p: Product) -> list[tuple[str, Any, str]]:
    f = p.fields
    s1 = p.family == "S1"
    return [
        ("Date", iso_ms(p.begin), "summary"),
        ("Filename", f["filename"], ""),
        ("Footprint", f["gmlfootprint"], "product"),
        ("Format", "SAFE", "product"),
        ("Identifier", p.name, ""),
        ("Ingestion Date", iso_ms(p.ingestion), "product"),
        ("Instrument", "SAR-C" if s1 else "MSI", "summary"),
        ("Instrument abbreviation", f["instrumentshortname"], "instrument"),
        ("Instrument mode", f.get("sensoroperationalmode", "INS-NOBS"), "instrument"),
        ("Instrument name", f["instrumentname"], "instrument"),
        ("JTS footprint", f["footprint"], "product"),
        ("NSSDC identifier", f.get("platformidentifier"), "platform"),
        ("Orbit number (start)", f["orbitnumber"], "product"),
        ("Pass direction", f.get("orbitdirection"), "product"),
        ("Product type", f["producttype"], "product"),
        ("Relative orbit (start)", f["relativeorbitnumber"], "product"),
        ("Satellite", f["platformname"], "summary"),
        ("Satellite name", f["platformname"], "platform"),
        ("Satellite number", p.mission[2], "platform"),
        ("Sensing start", iso_ms(p.begin), "product"),
        ("Sensing stop", iso_ms(p.end), "product"),
        ("Size", f["size"], "summary"),
    ]


def _mission_rows(p: Product) -> list[tuple[str, Any, str]]:
    f = p.fields
    if p.family == "S2":
        return [
            ("Cloud cover percentage", f.get("cloudcoverpercentage"), "product"),
            ("Mission datatake id", f["s2datatakeid"], "product"),
            ("Platform serial identifier", f["platformserialidentifier"], ""),
            ("Processing baseline", f["processingbaseline"], "product"),
            ("Processing level", f["processinglevel"], "product"),
            ("Tile Identifier", p.tile, "product"),
        ]
    rows = [("Acquisition Type", "NOMINAL", "product"), ("Carrier rocket", "Soyuz", "platform")]
    rows += [("Instrument swath", f["swathidentifier"], "instrument")]
    rows += [("Mission datatake id", f["missiondatatakeid"], "product")]
    rows += [
        ("Mission type", "Earth observation", "platform"),
        ("Mode", f["sensoroperationalmode"], "summary"),
    ]
    rows += [("Operator", "European Space Agency", "platform")]
    rows += [("Orbit number (stop)", f["lastorbitnumber"], "product")]
    rows += [("Polarisation", f["polarisationmode"], "product"), ("Product class", "S", "product")]
    rows += [("Product class description", "SAR Standard L1 Product", "product")]
    rows += [("Product composition", "Slice", "product"), ("Product level", "L1", "product")]
    rows += [("Relative orbit (stop)", f["lastrelativeorbitnumber"], "product")]
    rows += [("Slice number", f["slicenumber"], "product"), ("Status", f["status"], "product")]
    return [*rows, ("Timeliness Category", f["timeliness"], "product")]


def attribute_rows(p: Product) -> list[tuple[str, str, str]]:
    """(Name, Value, Category) of the product's attributes, sorted by name as DHuS does."""
    rows = _common_rows(p) + _mission_rows(p)
    return sorted((name, solr_text(value), cat) for name, value, cat in rows if value is not None)
