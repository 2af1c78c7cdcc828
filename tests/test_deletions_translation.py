"""The DeletedProducts translators of each kind (pure): requests built, answers read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.cdse_odata import deleted as cdse
from adapters.cdse_odata.mapping import ODataError
from adapters.dhus import deleted as dhus
from adapters.dhus.mapping import FeedError

MARK = datetime(2021, 11, 2, 8, 15, 0, 123456, tzinfo=UTC)


def test_dhus_request_reads_oldest_first_from_the_mark() -> None:
    assert dhus.deleted_params(MARK, 200, 100) == {
        "$format": "json",
        "$orderby": "DeletionDate asc",
        "$top": "100",
        "$skip": "200",
        "$filter": "DeletionDate ge datetime'2021-11-02T08:15:00.123'",
    }
    assert "$filter" not in dhus.deleted_params(None, 0, 10)


def test_cdse_request_reads_oldest_first_from_the_mark() -> None:
    assert cdse.deleted_params(MARK, 0, 50) == {
        "$filter": "DeletionDate ge 2021-11-02T08:15:00.123Z",
        "$orderby": "DeletionDate asc",
        "$top": "50",
        "$skip": "0",
    }


def _dhus_entity(**overrides: Any) -> dict[str, Any]:
    entity = {
        "Name": "S2A_MSIL1C_20211024T100031_N0301_R122_T33UXQ_20211024T120616",
        "DeletionDate": "/Date(1635840900000)/",
        "DeletionCause": "Obsolete: replaced by 0reprocessed product",
    }
    return entity | overrides


def test_dhus_answers_a_list_a_single_entity_and_a_null_cause() -> None:
    page = dhus.parse_deleted({"d": {"results": [_dhus_entity(), _dhus_entity()]}}, 2)
    assert page.more and len(page.products) == 2
    first = page.products[0]
    assert first.date == datetime(2021, 11, 2, 8, 15, tzinfo=UTC)
    assert first.cause == "Obsolete: replaced by 0reprocessed product"
    single = dhus.parse_deleted({"d": _dhus_entity(DeletionCause=None)}, 10)
    assert not single.more and single.products[0].cause is None
    assert dhus.parse_deleted({"d": {"results": []}}, 10).products == []


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": None, "message": {"lang": "en", "value": "Invalid filter"}}},
        [],
        {"d": {"results": [_dhus_entity(DeletionDate=None)]}},
        {"d": {"results": [_dhus_entity(Name="")]}},
    ],
)
def test_dhus_answers_that_are_not_a_feed(body: Any) -> None:
    with pytest.raises(FeedError):
        dhus.parse_deleted(body, 10)


def test_cdse_answer_and_its_next_link() -> None:
    entity = {
        "Name": "S1A_IW_GRDH_1SDV_20211024T050958_20211024T051023_040247_04C4CA_8F1C.SAFE",
        "DeletionDate": "2023-04-26T10:11:12.123456Z",
        "DeletionCause": "Corrupted product",
    }
    page = cdse.parse_deleted({"value": [entity], "@odata.nextLink": "https://x/next"}, 20)
    assert page.more
    assert page.products[0].date == datetime(2023, 4, 26, 10, 11, 12, 123456, tzinfo=UTC)
    assert not cdse.parse_deleted({"value": [entity]}, 20).more
    assert not cdse.parse_deleted({"value": []}, 20).more
    with pytest.raises(ODataError, match="Invalid orderby"):
        cdse.parse_deleted({"detail": "Invalid orderby: Name"}, 20)
    with pytest.raises(ODataError):
        cdse.parse_deleted({"value": [entity | {"DeletionDate": "yesterday"}]}, 20)
