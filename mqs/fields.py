"""The Fields extension: which parts of each item a response carries (applied after merging).

* no ``fields``: whole items;
* ``fields`` given but empty: the baseline that keeps an item valid STAC (:data:`DEFAULT`);
* only ``exclude`` (no ``include`` key at all, or GET ``-a,-b``): whole items without those
  fields (``fields=-assets``, as pgstac-backed APIs answer);
* ``include`` given but empty (or null): the baseline, minus ``exclude``;
* ``include``: those fields and what identifies an item (:data:`ALWAYS`), minus ``exclude``;
  where an included and an excluded path overlap, the more specific one wins (``properties``
  with ``-properties.datetime`` drops datetime; ``-properties`` with
  ``properties.eo:cloud_cover`` keeps cloud cover; the same path in both is kept).

This is the extension's text as stac-api-validator checks it. Names are dotted paths
(``properties.eo:cloud_cover``, ``assets.product``); a name that is not a top-level item
member is taken as a property (``eo:cloud_cover``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mqs.errors import InvalidRequest

DEFAULT = frozenset(
    {
        "type",
        "stac_version",
        "id",
        "collection",
        "geometry",
        "bbox",
        "links",
        "assets",
        "properties.datetime",
    }
)
ALWAYS = frozenset({"type", "stac_version", "id", "collection"})
TOP_LEVEL = frozenset(
    {
        "type",
        "stac_version",
        "stac_extensions",
        "id",
        "collection",
        "geometry",
        "bbox",
        "properties",
        "links",
        "assets",
    }
)
MAX_FIELDS = 100
Tree = dict[str, Any]  # name -> True (the whole value) or a sub-tree


@dataclass(frozen=True)
class FieldSelection:
    include: frozenset[str] | None  # None: the whole item
    exclude: frozenset[str]


def _path(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidRequest("invalid fields: expected field names")
    name = name.strip()
    if not name or len(name) > 256 or not name.isprintable():
        raise InvalidRequest(f"invalid fields: bad field name {name[:64]!r}")
    return name if name.split(".", 1)[0] in TOP_LEVEL else f"properties.{name}"


def parse_fields(value: Any) -> FieldSelection | None:
    """GET ``id,-geometry`` or POST ``{"include": [...], "exclude": [...]}``."""
    if value is None:
        return None
    if isinstance(value, str):
        tokens = [t.strip() for t in value.split(",") if t.strip()]
        include = [t.lstrip("+") for t in tokens if not t.startswith("-")]
        exclude = [t[1:] for t in tokens if t.startswith("-")]
        include_given = bool(include)
    elif isinstance(value, dict):
        include = list(value.get("include") or [])
        exclude = list(value.get("exclude") or [])
        include_given = "include" in value
    else:
        raise InvalidRequest("invalid fields: expected 'a,-b' or {include, exclude}")
    if len(include) + len(exclude) > MAX_FIELDS:
        raise InvalidRequest(f"invalid fields: at most {MAX_FIELDS} names")
    excluded = frozenset(map(_path, exclude))
    if exclude and not include_given:
        return FieldSelection(None, excluded)
    if not include:
        return FieldSelection(DEFAULT, excluded)
    included = frozenset(map(_path, include))
    # an exclusion covering something explicitly included gives way to it (more specific)
    excluded = frozenset(
        e for e in excluded if not any(i == e or i.startswith(f"{e}.") for i in included)
    )
    return FieldSelection(ALWAYS | included, excluded)


def _tree(paths: frozenset[str]) -> Tree:
    tree: Tree = {}
    for path in sorted(paths, key=lambda p: p.count(".")):
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if child is True:
                break
            node = child
        else:
            node[leaf] = True
    return tree


def _pick(value: dict[str, Any], tree: Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        if key not in value:
            continue
        if sub is True:
            out[key] = value[key]
        elif isinstance(value[key], dict):
            out[key] = _pick(value[key], sub)
    return out


def _drop(value: dict[str, Any], tree: Tree) -> dict[str, Any]:
    out = dict(value)
    for key, sub in tree.items():
        if sub is True:
            out.pop(key, None)
        elif isinstance(out.get(key), dict):
            out[key] = _drop(out[key], sub)
    return out


Selector = Callable[[dict[str, Any]], dict[str, Any]]


def selector(selection: FieldSelection | None) -> Selector:
    """A function item -> the item as the selection wants it (identity when no selection)."""
    if selection is None:
        return lambda item: item
    assert selection is not None
    include = _tree(selection.include) if selection.include is not None else None
    exclude = _tree(selection.exclude)

    def select(item: dict[str, Any]) -> dict[str, Any]:
        picked = _pick(item, include) if include is not None else item
        return _drop(picked, exclude) if exclude else picked

    return select
