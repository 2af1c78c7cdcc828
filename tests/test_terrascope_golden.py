"""Golden tests: recorded Terrascope answers (tests/fixtures/terrascope) -> the expected items."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pystac
import pytest
from shapely.geometry import shape
from stac_schema import item_errors

from adapters.base import Hit
from adapters.terrascope.collections import DEFAULT_COLLECTIONS, TerrascopeCollection
from adapters.terrascope.items import to_hit
from adapters.terrascope.mapping import (
    FeedError,
    Stream,
    collection_extent,
    merge,
    parse_page,
    sort_key,
)
from mqs.links import add_item_links

FIXTURES = Path(__file__).parent / "fixtures" / "terrascope"
TOC = DEFAULT_COLLECTIONS["terrascope-s2-toc-v2"]
FAPAR = DEFAULT_COLLECTIONS["terrascope-s2-fapar-v2"]
PORTUGAL = "openeo-geotrellis__opensearch_result_portugal__01_products.json"
ISSUE6 = "openeo-opensearch-client__oscarsIssue6__01_products.json"
FAPAR_ONE = "openeo-opensearch-client__oscarsProductsResponse__01_products.json"
EMPTY = "openeo-opensearch-client__oscarsNoProductsResponse__01_products.json"
COLLECTIONS = "openeo-opensearch-client__oscarsCollectionsResponse__01_collections.json"


def recorded(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def hits_of(name: str, cid: str, spec: TerrascopeCollection) -> list[Hit]:
    page = parse_page(recorded(name))
    hits = [to_hit(f, cid, spec) for f in page.features]
    assert None not in hits
    return [h for h in hits if h is not None]


def errors(item: dict[str, Any]) -> list[str]:
    """Schema errors of the item as the gateway serves it (with its links)."""
    return item_errors(add_item_links(copy.deepcopy(item), "http://mqs.test/"))


def test_toc_products_become_items_named_by_their_titles() -> None:
    hits = hits_of(PORTUGAL, "terrascope-s2-toc-v2", TOC)
    assert [h.product_id for h in hits] == [
        "S2A_20220211T113321_29SMC_TOC_V210",
        "S2A_20220211T113321_29SMD_TOC_V210",
        "S2A_20220211T113321_29SNC_TOC_V210",
        "S2A_20220211T113321_29SND_TOC_V210",
    ]
    item = hits[0].item
    assert item["id"] == hits[0].product_id and item["collection"] == "terrascope-s2-toc-v2"
    props = item["properties"]
    assert props["datetime"] == "2022-02-11T11:33:21.024Z"
    assert "start_datetime" not in props  # beginning == ending
    assert props["eo:cloud_cover"] == 0.004
    assert props["sat:absolute_orbit"] == 34683 and props["sat:relative_orbit"] == 80
    assert props["sat:orbit_state"] == "descending" and props["grid:code"] == "MGRS-29SMC"
    assert props["platform"] == "sentinel-2a" and props["constellation"] == "sentinel-2"
    assert props["instruments"] == ["msi"]
    assert props["product:type"] == "TOC" and props["processing:version"] == "V210"
    assert props["processing:datetime"] == "2023-10-04T12:03:44.173Z"
    assert (
        props["created"] == "2023-10-04T12:03:45Z"
        and props["updated"] == props["processing:datetime"]
    )
    # Portugal lies at lon -9, lat 38: the geometry is lon/lat and the bbox follows it.
    recorded_bbox = recorded(PORTUGAL)["features"][0]["bbox"]
    assert item["bbox"] == recorded_bbox == [-10.1527405, 37.8539506, -8.95166, 38.8486587]
    assert shape(item["geometry"]).bounds == pytest.approx(tuple(item["bbox"]))
    for hit in hits:
        assert errors(hit.item) == []
        assert pystac.Item.from_dict(hit.item).id == hit.product_id


def test_every_linked_file_is_an_asset_with_its_type_and_size() -> None:
    feature = recorded(PORTUGAL)["features"][0]
    links = feature["properties"]["links"]
    (hit,) = [
        h
        for h in hits_of(PORTUGAL, "terrascope-s2-toc-v2", TOC)
        if h.item["id"].endswith("29SMC_TOC_V210")
    ]
    assets = hit.item["assets"]
    data = {link["title"]: link for link in links["data"]}
    assert len(data) == 11 and set(data) <= set(assets)
    band = assets["TOC-B02_10M"]
    assert band == {
        "href": data["TOC-B02_10M"]["href"],
        "type": "image/tiff",
        "title": "TOC-B02_10M",
        "roles": ["data"],
        "file:size": 106320625,
    }
    assert assets["thumbnail"]["href"] == links["previews"][0]["href"]
    assert assets["thumbnail"]["roles"] == ["thumbnail"]
    assert assets["preview-WMS"]["type"] == "image/png"
    assert "file:size" not in assets["preview-WMS"]  # the WMS link has no length
    assert assets["metadata"]["type"] == "application/vnd.iso.19139+xml"
    assert assets["metadata"]["file:size"] == links["alternates"][0]["length"]
    assert assets["AOT_60M"]["roles"] == ["quality"]
    assert len(assets) == 11 + 2 + 1 + len(links["related"])
    assert (
        "https://stac-extensions.github.io/file/v2.1.0/schema.json" in hit.item["stac_extensions"]
    )


def test_two_versions_of_one_product_are_two_items() -> None:
    hits = hits_of(ISSUE6, "terrascope-s2-toc-v2", TOC)
    assert [h.product_id for h in hits] == [
        "S2B_20180814T105019_31UFS_TOC_V200",
        "S2B_20180814T105019_31UFS_TOC_V210",
    ]
    assert [h.item["properties"]["eo:cloud_cover"] for h in hits] == [72.84, 73.477]
    assert hits[0].item["assets"]["TOC-B01_60M"]["href"].startswith("file:///data/MTDA/")
    for hit in hits:
        assert errors(hit.item) == []


def test_split_acquisition_information_and_an_acquisition_interval() -> None:
    (hit,) = hits_of(FAPAR_ONE, "terrascope-s2-fapar-v2", FAPAR)
    props = hit.item["properties"]
    assert hit.product_id == "S2A_20191128T075251Z_36MZE_FAPAR_10M_V102"
    assert props["datetime"] == props["start_datetime"] == "2019-11-28T07:56:06Z"
    assert props["end_datetime"] == "2019-11-28T08:14:37Z"
    assert props["platform"] == "sentinel-2a"  # "SENTINEL-2" / "S2A" in a separate entry
    assert props["grid:code"] == "MGRS-36MZE" and props["eo:cloud_cover"] == 8.085
    assert "sat:orbit_state" not in props
    fapar = hit.item["assets"]["FAPAR_10M"]
    assert fapar["href"].startswith("https://oscars-dev.vgt.vito.be/download/CGS_S2_FAPAR/")
    assert fapar["file:size"] == 50631148
    assert hit.item["assets"]["CLOUDMASK_10M"]["roles"] == ["cloud"]
    assert errors(hit.item) == []


def test_a_page_past_the_end_is_empty_with_the_total() -> None:
    page = parse_page(recorded(EMPTY))
    assert (page.total, page.start_index, page.features) == (404, 405, [])


def test_not_a_feature_collection_is_an_error() -> None:
    with pytest.raises(FeedError):
        parse_page({"type": "Feature"})
    with pytest.raises(FeedError):
        parse_page({"type": "FeatureCollection", "features": None})


def test_a_mirror_copy_is_keyed_by_its_sentinel_product_name() -> None:
    name = "S1B_IW_GRDH_1SDV_20200606T060615_20200606T060640_021909_029944_4C69"
    feature = copy.deepcopy(recorded(PORTUGAL)["features"][0])
    props = feature["properties"]
    props["title"] = f"{name}.SAFE"
    props["acquisitionInformation"] = [
        {
            "platform": {"platformShortName": "SENTINEL-1", "platformSerialIdentifier": "S1B"},
            "acquisitionParameters": {
                "beginningDateTime": "2020-06-06T06:06:15.351Z",
                "endingDateTime": "2020-06-06T06:06:40.350Z",
                "orbitDirection": "DESCENDING",
            },
        }
    ]
    props["productInformation"] = {"productType": "GRD"}
    zip_href = f"https://services.terrascope.be/download/CGS_S1_GRD_L1/{name}/{name}.zip"
    props["links"] = {"data": [{"href": zip_href, "type": "application/zip", "length": 9}]}
    hit = to_hit(feature, "sentinel-1-grd", DEFAULT_COLLECTIONS["sentinel-1-grd"])
    assert hit is not None and hit.product_id == name == hit.item["id"]
    assert hit.item["assets"]["product"]["href"] == zip_href
    sar = {k: v for k, v in hit.item["properties"].items() if k.startswith("sar:")}
    assert sar == {
        "sar:instrument_mode": "IW",
        "sar:frequency_band": "C",
        "sar:center_frequency": 5.405,
        "sar:polarizations": ["VV", "VH"],
        "sar:product_type": "GRD",
    }
    assert hit.item["properties"]["instruments"] == ["sar"]
    assert errors(hit.item) == []
    # The same feature in a derived collection is never keyed by a Sentinel product name.
    derived = to_hit(feature, "terrascope-s1-grd-sigma0", TerrascopeCollection("urn:x:Y", True))
    assert derived is not None
    assert derived.product_id == feature["id"]  # its own URN-qualified Terrascope id
    assert "product" not in derived.item["assets"]


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"title": None}, id="no-title"),
        pytest.param({"date": "yesterday", "acquisitionInformation": []}, id="no-time"),
    ],
)
def test_unusable_features_are_left_out(broken: dict[str, Any]) -> None:
    feature = copy.deepcopy(recorded(PORTUGAL)["features"][0])
    feature["properties"].update(broken)
    assert to_hit(feature, "terrascope-s2-toc-v2", TOC) is None
    assert to_hit("not a feature", "terrascope-s2-toc-v2", TOC) is None


def test_collection_extent_from_the_collections_answer() -> None:
    body = recorded(COLLECTIONS)
    doc = collection_extent(body, "urn:eop:VITO:CGS_S1_GRD_L1")
    assert doc == {
        "id": "urn:eop:VITO:CGS_S1_GRD_L1",
        "title": "SENTINEL-1 Level-1 Ground Range Detected (GRD) products",
        "extent": {
            "spatial": {"bbox": [[-180, -84, 180, 84]]},
            "temporal": {"interval": [["2017-06-15T00:00:00.000Z", None]]},
        },
    }
    fapar = collection_extent(body, "urn:eop:VITO:CGS_S2_FAPAR")
    assert fapar is not None and fapar["extent"]["spatial"]["bbox"] == [
        [-179.999, -84, 179.999, 84]
    ]
    assert collection_extent(body, "urn:eop:VITO:NOT_THERE") is None


def _stream(start: int, times: list[str | None], last: bool) -> Stream:
    entries: list[tuple[str | None, Hit | None]] = []
    for n, when in enumerate(times):
        if when is None:
            entries.append((None, None))
            continue
        hit = Hit(f"p{start + n}-{when}", {"properties": {"datetime": when}})
        entries.append((sort_key(hit), hit))
    return Stream(start, entries, last)


def test_streams_merge_by_datetime_and_resume_where_each_stopped() -> None:
    a = _stream(1, ["2021-10-05T00:00:00Z", "2021-10-03T00:00:00Z", "2021-10-01T00:00:00Z"], False)
    b = _stream(11, ["2021-10-04T00:00:00Z", None, "2021-10-02T00:00:00Z"], True)
    hits, resume = merge([a, b], 4)
    assert [h.product_id for h in hits] == [
        "p1-2021-10-05T00:00:00Z",
        "p11-2021-10-04T00:00:00Z",
        "p2-2021-10-03T00:00:00Z",
        "p13-2021-10-02T00:00:00Z",  # the unusable feature between is passed over
    ]
    assert resume == [3, None]


def test_a_stream_that_goes_on_stops_the_merge_when_its_page_is_used_up() -> None:
    a = _stream(1, ["2021-10-05T00:00:00Z"], False)  # more may follow, maybe newer than b's
    b = _stream(1, ["2021-10-04T00:00:00Z", "2021-10-03T00:00:00Z"], True)
    hits, resume = merge([a, b], 10)
    assert [h.product_id for h in hits] == ["p1-2021-10-05T00:00:00Z"]
    assert resume == [2, 1]
    hits, resume = merge([None, b], 10)
    assert len(hits) == 2 and resume == [None, None]
