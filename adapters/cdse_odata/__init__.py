"""Copernicus Data Space Ecosystem OData catalogue (kind ``cdse-odata``)."""
