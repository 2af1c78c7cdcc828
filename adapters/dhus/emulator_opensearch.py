"""DHuS OpenSearch answers: ordering, the JSON feed with its quirks, and the Atom feed.

The JSON form is the one the recorded apihub answers have (``tests/fixtures/dhus/opensearch``):
every value a string; one result -> ``entry`` is an object, none -> no ``entry`` at all; a
type group (``date``, ``int``, ``double``, ``str``) with one element is an object. Subtitle and
paging links follow DHuS's rules (``last`` is ``start=total-1``; ``previous`` only past the first
page; ``next`` while more than a page remains).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from adapters.dhus.emulator_records import (
    DATE_FIELDS,
    DOUBLE_FIELDS,
    INT_FIELDS,
    KNOWN_FIELDS,
    Product,
    iso_ms,
    solr_text,
)
from adapters.dhus.emulator_solr import SolrError

HUB = "Sentinels Scientific Data Hub"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class Page:
    """One answered search: what to render."""

    query: str
    start: int
    rows: int
    total: int
    products: list[Product]
    root: str  # the hub's base URL, ending with "/"
    json: bool
    seconds: float


# --- ordering ----------------------------------------------------------------------------------
def sort_keys(orderby: str | None) -> list[tuple[str, bool]]:
    """``"cloudcoverpercentage asc,beginposition desc"`` -> [(field, descending)]."""
    if not orderby or not orderby.strip():
        return [("ingestiondate", True)]
    keys = []
    for spec in orderby.split(","):
        parts = spec.split()
        if not parts:
            continue
        name = parts[0].lower()
        if name not in KNOWN_FIELDS or name == "footprint":
            raise SolrError(f"sort param field can't be found: {name}")
        if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise SolrError(f"Can't determine a Sort Order (asc or desc) in sort spec '{spec}'")
        keys.append((name, len(parts) == 2 and parts[1].lower() == "desc"))
    return keys


def sort_products(products: list[Product], orderby: str | None, tie_order: str) -> list[Product]:
    """Ordered by ``orderby`` as DHuS's Solr schema sorts; ties in the index's own order
    (``tie_order``: ``uuid``, like a Solr index's internal order, ``name`` or ``input``)."""
    ordered = list(products)
    if tie_order != "input":
        ordered.sort(key=(lambda p: p.uuid) if tie_order == "uuid" else (lambda p: p.name))
    for name, desc in reversed(sort_keys(orderby)):
        ordered.sort(key=_sort_value(name, desc), reverse=desc)
    return ordered


def _sort_value(name: str, desc: bool) -> Callable[[Product], tuple[int, Any]]:
    """A product's sort key for one field, missing values placed as DHuS's Solr places them.

    The schema's numeric and date fields are Trie fields without ``sortMissingLast``: a product
    without the field sorts as if it held 0 (dates: 1970-01-01), in either direction. Its
    string fields have ``sortMissingLast``: such products come last in either direction.
    """
    if name in INT_FIELDS or name in DOUBLE_FIELDS or name in DATE_FIELDS:
        zero: Any = _EPOCH if name in DATE_FIELDS else 0

        def trie(p: Product) -> tuple[int, Any]:
            value = p.fields.get(name)
            return (0, zero if value is None else value)

        return trie

    def string(p: Product) -> tuple[int, Any]:
        value = p.fields.get(name)
        present = value is not None
        return (int(present) if desc else int(not present), value if present else "")

    return string


# --- feed parts --------------------------------------------------------------------------------
def subtitle(page: Page) -> str:
    total, start, rows = page.total, page.start, page.rows
    done = f"Request done in {page.seconds} seconds."
    if total > rows and total - start > rows:
        return f"Displaying {start} to {start + rows - 1} of {total} total results. {done}"
    if total > rows and start > 0:
        return f"Displaying {start} to {total - 1} of {total} total results. {done}"
    return f"Displaying {total} results. {done}"


def links(page: Page) -> list[dict[str, str]]:
    kind = "application/json" if page.json else "application/atom+xml"
    suffix = "&format=json" if page.json else ""
    current = math.ceil(page.start / page.rows) if page.rows else 0

    def link(rel: str, start: int) -> dict[str, str]:
        href = f"{page.root}search?q={page.query}&start={start}&rows={page.rows}{suffix}"
        return {"rel": rel, "type": kind, "href": href}

    out = [link("self", page.start), link("first", 0)]
    if page.start > page.rows:
        out.append(link("previous", (current - 1) * page.rows))
    if page.total > page.rows and page.total - page.start > page.rows:
        out.append(link("next", (current + 1) * page.rows))
    out.append(link("last", page.total - 1))
    search = "application/opensearchdescription+xml"
    return [*out, {"rel": "search", "type": search, "href": "opensearch_description.xml"}]


def summary(p: Product) -> str:
    f = p.fields
    mode = f", Mode: {f['polarisationmode']}" if "polarisationmode" in f else ""
    return (
        f"Date: {solr_text(p.begin)}, Instrument: {f['instrumentshortname']}{mode}, "
        f"Satellite: {f['platformname']}, Size: {f['size']}"
    )


def _entry_links(p: Product, root: str) -> list[dict[str, str]]:
    url = f"{root}odata/v1/Products('{p.uuid}')"
    return [
        {"href": f"{url}/$value"},
        {"rel": "alternative", "href": f"{url}/"},
        {"rel": "icon", "href": f"{url}/Products('Quicklook')/$value"},
    ]


def groups(p: Product) -> list[tuple[str, list[tuple[str, str]]]]:
    """The entry's typed fields: [(group, [(name, text)])], empty groups left out."""
    out = []
    for group, names in p.layout:
        values = [(n, solr_text(p.fields[n])) for n in names if n in p.fields]
        if values:
            out.append((group, values))
    return out


def entry_json(p: Product, root: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"title": p.name, "link": _entry_links(p, root), "id": p.uuid}
    entry |= {"summary": summary(p), "ondemand": "false"}
    for group, values in groups(p):
        items = [{"name": name, "content": text} for name, text in values]
        entry[group] = items[0] if len(items) == 1 else items
    return entry


def _head(page: Page) -> dict[str, Any]:
    return {
        "title": f"{HUB} search results for: {page.query}",
        "subtitle": subtitle(page),
        "updated": iso_ms(datetime.now(UTC)),
        "author": {"name": HUB},
        "id": f"{page.root}search?q={page.query}",
        "opensearch:totalResults": str(page.total),
        "opensearch:startIndex": str(page.start),
        "opensearch:itemsPerPage": str(page.rows),
        "opensearch:Query": {"role": "request", "searchTerms": page.query, "startPage": "1"},
    }


# --- JSON --------------------------------------------------------------------------------------
def feed_json(page: Page) -> dict[str, Any]:
    feed: dict[str, Any] = {"xmlns:opensearch": OPENSEARCH_NS, "xmlns": ATOM_NS}
    feed |= _head(page) | {"link": links(page)}
    entries = [entry_json(p, page.root) for p in page.products]
    if entries:
        feed["entry"] = entries[0] if len(entries) == 1 else entries
    return {"feed": feed}


def error_json(message: str) -> dict[str, Any]:
    feed = {"xmlns:opensearch": OPENSEARCH_NS, "xmlns": ATOM_NS}
    return {"feed": feed | {"error": {"code": "400", "message": message}}}


# --- Atom --------------------------------------------------------------------------------------
def _element(tag: str, text: str | None = None, **attributes: str) -> str:
    attrs = "".join(f" {name}={quoteattr(value)}" for name, value in attributes.items())
    return f"<{tag}{attrs}/>" if text is None else f"<{tag}{attrs}>{escape(text)}</{tag}>"


def _open(body: list[str]) -> bytes:
    head = f'<?xml version="1.0" encoding="utf-8"?><feed xmlns:opensearch="{OPENSEARCH_NS}" '
    return (head + f'xmlns="{ATOM_NS}">\n' + "\n".join(body) + "\n</feed>\n").encode()


def _entry_atom(p: Product, root: str) -> str:
    lines = [_element("title", p.name)]
    lines += [_element("link", **link) for link in _entry_links(p, root)]
    lines += [_element("id", p.uuid), _element("summary", summary(p))]
    lines.append(_element("ondemand", "false"))
    for group, values in groups(p):
        lines += [_element(group, text, name=name) for name, text in values]
    return "<entry>\n" + "\n".join(lines) + "\n</entry>"


def feed_atom(page: Page) -> bytes:
    head = _head(page)
    query = head.pop("opensearch:Query")
    body = [_element("title", head.pop("title")), _element("subtitle", head.pop("subtitle"))]
    body += [_element("updated", head.pop("updated"))]
    body += [f"<author>{_element('name', HUB)}</author>", _element("id", head.pop("id"))]
    body += [_element(name, value) for name, value in head.items() if name != "author"]
    body.append(_element("opensearch:Query", **query))
    body += [_element("link", **link) for link in links(page)]
    body += [_entry_atom(p, page.root) for p in page.products]
    return _open(body)


def error_atom(message: str) -> bytes:
    return _open([f"<error>{_element('code', '400')}{_element('message', message)}</error>"])
