"""Validate STAC items against the STAC 1.0.0 and extension JSON schemas, offline."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft7Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "fixtures" / "schemas"
ITEM = "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json"
COLLECTION = "https://schemas.stacspec.org/v1.0.0/collection-spec/json-schema/collection.json"


def _retrieve(uri: str) -> Resource[Any]:
    path = SCHEMAS / uri.split("://", 1)[1]
    if not path.is_file():
        raise LookupError(f"no local copy of schema {uri}")
    return Resource.from_contents(orjson.loads(path.read_bytes()))


@cache
def _validator(uri: str) -> Draft7Validator:
    registry: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    return Draft7Validator(_retrieve(uri).contents, registry=registry)


def item_errors(item: dict[str, Any], core: str = ITEM) -> list[str]:
    """Every schema error of an item: the core schema and each extension it declares."""
    errors = []
    for uri in [core, *item.get("stac_extensions", [])]:
        for error in _validator(uri).iter_errors(item):
            errors.append(f"{uri.rsplit('/', 3)[-3]}: {error.json_path}: {error.message[:200]}")
    return errors


def collection_errors(collection: dict[str, Any]) -> list[str]:
    """Every schema error of a collection: the core schema and each extension it declares."""
    return item_errors(collection, core=COLLECTION)
