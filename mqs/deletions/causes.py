"""``DeletionCause`` free text -> one class of a small, documented vocabulary.

ESA publishes why it withdrew a product only as free text, spelt many ways
(``Obsolete: replaced by 0reprocessed product``, ``Obsolete replaced by reprocessed product``,
a truncated ``"Invalid``, the literal ``null``). The text is normalised (case, punctuation and
digits glued to words dropped) and the first matching rule below decides, most specific first:
a reprocessed replacement is ``replaced-by-reprocessing`` even when it also says "Obsolete".
"""

from __future__ import annotations

import re
from typing import Final

OBSOLETE: Final = "obsolete"
REPLACED: Final = "replaced-by-reprocessing"
DUPLICATE: Final = "duplicate"
CORRUPTED: Final = "corrupted"
INVALID: Final = "invalid"
DEGRADED: Final = "degraded-quality"
EVICTED: Final = "eviction-to-lta"
OTHER: Final = "other"
UNKNOWN: Final = "unknown"

# class -> what it means (README's vocabulary table; /deletions documents it too)
VOCABULARY: Final[dict[str, str]] = {
    OBSOLETE: "an obsolete format or processor version, no named successor",
    REPLACED: "replaced by a newer product (reprocessing, a newer version, a full datastrip)",
    DUPLICATE: "a duplicate of another product",
    CORRUPTED: "damaged data: corrupted, wrong or missing checksum, unrecoverable gaps",
    INVALID: "wrong content or processing: invalid, wrong configuration, missing auxiliary data",
    DEGRADED: "valid but of degraded radiometric or geolocation quality",
    EVICTED: "evicted from the online archive to long-term archive (not a withdrawal)",
    OTHER: "a cause none of the rules recognises",
    UNKNOWN: "no cause given (null or empty)",
}

# Classes that withdraw a product from the federation (an eviction only moves one copy).
WITHDRAWN: Final = frozenset(VOCABULARY) - {EVICTED}

_RULES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (EVICTED, re.compile(r"\bevict")),
    (REPLACED, re.compile(r"reprocess|updated version|supersed|\breplaced?\b")),
    (DUPLICATE, re.compile(r"\bduplicat")),
    (CORRUPTED, re.compile(r"\bcorrupt|checksum|unrecoverable gap|quicklook|thumbnail")),
    (DEGRADED, re.compile(r"\bdegraded\b")),
    (
        INVALID,
        re.compile(
            r"\binvalid|\bwrong\b|\bmissing\b|\bwithout aux|\btest products?\b"
            r"|\bshutter\b|wrongly"
        ),
    ),
    (OBSOLETE, re.compile(r"\bobsolete")),
)
_NOISE = re.compile(r"[^a-z]+")


def normalise(cause: str | None) -> str:
    """Lower case, letters only, single spaces: ``0reprocessed`` -> ``reprocessed``."""
    return _NOISE.sub(" ", (cause or "").lower()).strip()


def classify(cause: str | None) -> str:
    """The vocabulary class of a raw ``DeletionCause`` (``unknown`` for null or empty)."""
    text = normalise(cause)
    if text in ("", "null", "none"):
        return UNKNOWN
    for name, rule in _RULES:
        if rule.search(text):
            return name
    return OTHER
