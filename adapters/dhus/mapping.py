"""DHuS answers -> product records (pure): OpenSearch JSON and Atom, OData v1 JSON.

Both APIs are read into one record shape, the OpenSearch field names (``beginposition``,
``cloudcoverpercentage``, ...) with string values, so one function (:mod:`adapters.dhus.items`)
makes STAC items of either. The quirks handled here are the real ones of the recorded
answers: a single result is an object, not a list; zero results have no ``entry``; every number
is a string; typed groups (``str``, ``int``, ``double``, ``date``) are lists of
``{name, content}`` or one such object; OData dates are ``/Date(ms)/``; errors may come with
status 200 inside the feed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

ATOM = "{http://www.w3.org/2005/Atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
TYPED_GROUPS = ("date", "int", "double", "str", "bool", "long", "float")
_DATE = re.compile(r"^/Date\((-?\d+)\)/$")


class FeedError(ValueError):
    """The backend answered with an error instead of results."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Record:
    """One DHuS product, whichever API described it."""

    uuid: str
    fields: dict[str, str] = field(default_factory=dict)
    size: int | None = None  # exact bytes (OData ContentLength)
    md5: str | None = None

    @property
    def name(self) -> str:
        return self.fields.get("identifier") or self.fields.get("title", "")


@dataclass
class Feed:
    records: list[Record]
    total: int | None


def as_list(value: Any) -> list[Any]:
    """The DHuS JSON quirk: one element is an object, several a list, none absent."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- OpenSearch JSON ---------------------------------------------------------------------


def parse_json_feed(body: Any) -> Feed:
    if not isinstance(body, dict) or not isinstance(body.get("feed"), dict):
        raise FeedError("not a DHuS OpenSearch feed")
    feed = body["feed"]
    if isinstance(feed.get("error"), dict):
        error = feed["error"]
        raise FeedError(str(error.get("message", "error"))[:300], str(error.get("code")))
    records = [_json_entry(e) for e in as_list(feed.get("entry")) if isinstance(e, dict)]
    return Feed(records, _int(feed.get("opensearch:totalResults")))


def _json_entry(entry: dict[str, Any]) -> Record:
    fields: dict[str, str] = {"title": str(entry.get("title", ""))}
    for group in TYPED_GROUPS:
        for element in as_list(entry.get(group)):
            if isinstance(element, dict) and "name" in element:
                fields[str(element["name"])] = str(element.get("content", ""))
    if "ondemand" in entry:
        fields["ondemand"] = str(entry["ondemand"])
    return Record(uuid=str(entry.get("id") or fields.get("uuid", "")), fields=fields)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- OpenSearch Atom XML -----------------------------------------------------------------


def parse_atom_feed(text: bytes | str) -> Feed:
    try:
        root = SafeET.fromstring(text)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise FeedError(f"unreadable Atom feed: {exc}") from None
    if root.tag != f"{ATOM}feed":
        raise FeedError("not an Atom feed")
    error = root.find(f"{ATOM}error")
    if error is not None:
        message = error.findtext(f"{ATOM}message") or "error"
        raise FeedError(message[:300], error.findtext(f"{ATOM}code"))
    records = [_atom_entry(e) for e in root.findall(f"{ATOM}entry")]
    return Feed(records, _int(root.findtext(f"{OPENSEARCH}totalResults")))


def _atom_entry(entry: Element) -> Record:
    fields = {"title": entry.findtext(f"{ATOM}title") or ""}
    for child in entry:
        tag = child.tag.removeprefix(ATOM)
        if tag in TYPED_GROUPS and child.get("name"):
            fields[str(child.get("name"))] = child.text or ""
        elif tag == "ondemand":
            fields["ondemand"] = child.text or ""
    return Record(uuid=entry.findtext(f"{ATOM}id") or fields.get("uuid", ""), fields=fields)


# --- OData v1 ----------------------------------------------------------------------------

# OData attribute name (as DHuS names them) -> OpenSearch field name.
ODATA_ATTRIBUTES = {
    "Cloud cover percentage": "cloudcoverpercentage",
    "Relative orbit (start)": "relativeorbitnumber",
    "Orbit number (start)": "orbitnumber",
    "Pass direction": "orbitdirection",
    "Polarisation": "polarisationmode",
    "Sensor mode": "sensoroperationalmode",
    "Instrument mode": "sensoroperationalmode",
    "Mode": "sensoroperationalmode",
    "Product type": "producttype",
    "Satellite name": "platformname",
    "Satellite": "platformname",
    "Platform serial identifier": "platformserialidentifier",
    "Tile Identifier": "tileid",
    "Tile Identifier horizontal order": "hv_order_tileid",
    "Processing baseline": "processingbaseline",
    "Processing level": "processinglevel",
    "JTS footprint": "footprint",
    "Footprint": "gmlfootprint",
    "Sensing start": "beginposition",
    "Sensing stop": "endposition",
    "Ingestion Date": "ingestiondate",
    "Filename": "filename",
    "Identifier": "identifier",
    "Instrument abbreviation": "instrumentshortname",
    "Instrument": "instrumentshortname",
    "Size": "size",
    "Format": "format",
    "Timeliness Category": "timeliness",
    "Swath": "swathidentifier",
}


def odata_instant(value: Any) -> str | None:
    """``/Date(1448100236675)/`` (or an ISO string) -> ISO 8601 UTC with ms and ``Z``."""
    if not isinstance(value, str):
        return None
    found = _DATE.match(value)
    if found is None:
        return value if value[:4].isdigit() else None
    moment = datetime.fromtimestamp(int(found[1]) / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_odata_products(body: Any) -> Feed:
    """``{"d": {"results": [...], "__count": "N"}}`` or a single ``{"d": {...}}``."""
    if not isinstance(body, dict) or not isinstance(body.get("d"), dict):
        raise FeedError(odata_error(body) or "not a DHuS OData answer")
    data = body["d"]
    if "results" in data:
        products = as_list(data["results"])
        return Feed(
            [odata_record(p) for p in products if isinstance(p, dict)], _int(data.get("__count"))
        )
    return Feed([odata_record(data)], 1)


def odata_error(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    return str(message)[:300] if message else "error"


def odata_record(product: dict[str, Any]) -> Record:
    attributes = product.get("Attributes")
    fields = {}
    if isinstance(attributes, dict):
        for attribute in as_list(attributes.get("results")):
            name = ODATA_ATTRIBUTES.get(str(attribute.get("Name")))
            if name and attribute.get("Value") is not None and name not in fields:
                fields[name] = str(attribute["Value"])
    name = str(product.get("Name", ""))
    content = product.get("ContentDate") or {}
    known = {
        "identifier": name,
        "title": name,
        "beginposition": odata_instant(content.get("Start")),
        "endposition": odata_instant(content.get("End")),
        "ingestiondate": odata_instant(product.get("IngestionDate")),
        "gmlfootprint": product.get("ContentGeometry"),
    }
    fields.update({k: str(v) for k, v in known.items() if v and k not in fields})
    checksum = product.get("Checksum") or {}
    md5 = checksum.get("Value") if str(checksum.get("Algorithm", "")).upper() == "MD5" else None
    return Record(
        uuid=str(product.get("Id", "")),
        fields=fields,
        size=_int(product.get("ContentLength")),
        md5=str(md5) if md5 else None,
    )
