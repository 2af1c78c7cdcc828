"""DeletionCause -> class, on the 43 real causes (tests/fixtures/deletions/PROVENANCE.md)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mqs.deletions.causes import VOCABULARY, WITHDRAWN, classify

TSV = Path(__file__).parent / "fixtures" / "deletions" / "deletion-causes.tsv"

# Every real cause, classified by hand (reading the text as a mirror operator would).
BY_HAND = {
    "Obsolete product format": "obsolete",
    "Automatic Eviction": "eviction-to-lta",
    '"Invalid': "invalid",
    "Obsolete product: an updated version is available": "replaced-by-reprocessing",
    "Obsolete: replaced by 0reprocessed product": "replaced-by-reprocessing",
    "Obsolete replaced by reprocessed product": "replaced-by-reprocessing",
    "Duplicate Products": "duplicate",
    "Invalid generated with wrong TCI": "invalid",
    "Obsolete: replaced by reprocessed product": "replaced-by-reprocessing",
    "Products with degraded quality on the image radiometry": "degraded-quality",
    "Invalid: incomplete products not in line with product specifications": "invalid",
    "Invalid: geolocation error": "invalid",
    "Obsolete degraded quality": "degraded-quality",
    "null": "unknown",
    "Obsolete: duplicated product": "duplicate",
    "Products without AUX_ECMWFT": "invalid",
    "Invalid": "invalid",
    "Duplicated product": "duplicate",
    "Missing JTS footprint": "invalid",
    "Products with wrong Processing Baseline": "invalid",
    "Products with degraded geolocation quality": "degraded-quality",
    "Products: deleted due to processing without AUX_RES": "invalid",
    "Partial datastrips to be replaced with full ones": "replaced-by-reprocessing",
    "Products with degraded quality": "degraded-quality",
    "Corrupted Products": "corrupted",
    "Obsolete IPF version": "obsolete",
    "Corrupted products": "corrupted",
    "Wrong checksum": "corrupted",
    "NRT-3h products removed because they are superseded by equivalent Fast24 products": (
        "replaced-by-reprocessing"
    ),
    "Duplicated products": "duplicate",
    "Duplicate products": "duplicate",
    "Degraded Geolocation Quality due to collision avoidance maneuver": "degraded-quality",
    "Removed from dataoffer": "other",
    "Products affected by significant unrecoverable gaps": "corrupted",
    "Invalid: wrong Ground Image Processing Parameters": "invalid",
    "Wrong Ground Processing Configuration": "invalid",
    "Corrupted product": "corrupted",
    "Test products wrongly disseminated": "invalid",
    "Invalid: wrong Ground Processing Configuration": "invalid",
    "Acquisitions performed with MSI Instrument Calibration and Shutter Mechanism closed": (
        "invalid"
    ),
    "Issue occurred during the generation of Quicklook and Thumbnail": "corrupted",
    "Invalid: wrong filename": "invalid",
    "Invalid: Product wrongly indexed": "invalid",
}


def _causes() -> list[tuple[int, str]]:
    with TSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["count", "cause"]
    return [(int(count), cause) for count, cause in rows[1:]]


def test_the_table_holds_the_43_real_causes() -> None:
    causes = _causes()
    assert len(causes) == 43
    assert {c for _, c in causes} == set(BY_HAND)


@pytest.mark.parametrize(("count", "cause"), _causes(), ids=lambda v: str(v)[:40])
def test_each_real_cause_is_classified_as_by_hand(count: int, cause: str) -> None:
    assert classify(cause) == BY_HAND[cause]
    assert classify(cause) in VOCABULARY


def test_only_a_cause_without_a_reason_is_other() -> None:
    others = [c for _, c in _causes() if classify(c) == "other"]
    assert others == ["Removed from dataoffer"]


def test_the_top_causes_by_count() -> None:
    """The ten most frequent causes (97 % of the products) land where an operator expects."""
    top = sorted(_causes(), reverse=True)[:10]
    assert [(n, classify(c)) for n, c in top] == [
        (135981, "obsolete"),
        (81258, "eviction-to-lta"),
        (26684, "invalid"),
        (7512, "replaced-by-reprocessing"),
        (3470, "replaced-by-reprocessing"),
        (2880, "replaced-by-reprocessing"),
        (2662, "duplicate"),
        (1476, "invalid"),
        (1116, "replaced-by-reprocessing"),
        (633, "degraded-quality"),
    ]
    total = sum(n for n, _ in _causes())
    assert sum(n for n, _ in top) / total > 0.97


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        # CDSE's documented DeletionCause values
        ("Duplicated product", "duplicate"),
        ("Missing checksum", "corrupted"),
        ("Corrupted product", "corrupted"),
        ("Obsolete product or Other", "obsolete"),
        ("Reprocessed product", "replaced-by-reprocessing"),
        # spelling variants the normalisation absorbs
        ("OBSOLETE:REPLACED BY REPROCESSED PRODUCT", "replaced-by-reprocessing"),
        ("  automatic   eviction ", "eviction-to-lta"),
        ("", "unknown"),
        (None, "unknown"),
        ("NULL", "unknown"),
        ("something nobody wrote before", "other"),
    ],
)
def test_variants(cause: str | None, expected: str) -> None:
    assert classify(cause) == expected


def test_evictions_do_not_withdraw_a_product() -> None:
    assert "eviction-to-lta" not in WITHDRAWN
    assert {"obsolete", "invalid", "corrupted", "unknown"} <= WITHDRAWN
