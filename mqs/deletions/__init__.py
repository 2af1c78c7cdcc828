"""Deleted and invalid products: what the archives withdrew, why, and what search does with it.

- :mod:`.model`: what a backend's ``DeletedProducts`` feed yields (adapters produce it).
- :mod:`.causes`: the free-text ``DeletionCause`` -> a small documented vocabulary.
- :mod:`.store` / :mod:`.registry`: the deletion registry in Redis (or process memory).
- :mod:`.sync`: incremental reading of every feed by deletion date (high-water mark).
- :mod:`.search`: deleted products left out of search results, or flagged on request.
- :mod:`.routes`: ``GET /deletions``, the mirror operator's morning report.
"""
