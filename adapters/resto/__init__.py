"""Backend kind ``resto``: the resto OpenSearch JSON API (CDSE catalogue, CreoDIAS finder)."""
