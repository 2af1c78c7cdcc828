"""Adapter for ESA Data Hub Software (DHuS) archives: OpenSearch/Solr and OData v1."""
