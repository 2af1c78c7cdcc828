"""Literals every layer reads the same way: RFC 3339 instants and bbox rectangles."""

from __future__ import annotations

from datetime import UTC, datetime

import iso8601
import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from stac_fastapi.types.rfc3339 import rfc3339_str_to_datetime

from mqs.errors import InvalidRequest


def format_instant(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, millisecond precision when there is a fraction."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """A strict RFC 3339 date-time (``2021-10-01T00:00:00Z``, offsets as ``+01:00``)."""
    try:  # (an offset can take year 1 or 9999 out of range in UTC: OverflowError)
        return rfc3339_str_to_datetime(text.strip()).astimezone(UTC)
    except (ValueError, OverflowError, iso8601.ParseError):
        raise InvalidRequest(
            f"invalid datetime {text[:64]!r}: expected RFC 3339, e.g. 2021-10-01T00:00:00Z"
        ) from None


def bbox_geometry(bbox: tuple[float, float, float, float]) -> BaseGeometry:
    """The box as a shape; a box without area (a point or a line) as that point or line.

    (A collapsed polygon is invalid WKT for Solr and resto, which reject it.)
    """
    west, south, east, north = bbox
    if west <= east:
        shape: BaseGeometry = box(west, south, east, north)
    else:
        shape = shapely.MultiPolygon([box(west, south, 180, north), box(-180, south, east, north)])
    return shape if shape.is_valid else shapely.make_valid(shape)
