"""Adapter kind ``terrascope``: VITO's Terrascope OpenSearch catalogue (GeoJSON answers)."""
