"""Adapter for any STAC API (kind ``stac``)."""
