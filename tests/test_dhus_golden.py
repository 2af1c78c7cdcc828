"""Golden tests: real recorded DHuS answers (tests/fixtures/dhus) -> the expected STAC items."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pystac
import pytest
import shapely
from shapely.geometry import shape
from stac_schema import item_errors

from adapters.dhus.collections import DEFAULT_COLLECTIONS
from adapters.dhus.items import to_item
from adapters.dhus.manifest import file_assets, parse_manifest
from adapters.dhus.mapping import (
    FeedError,
    Record,
    odata_instant,
    parse_atom_feed,
    parse_json_feed,
    parse_odata_products,
)
from mqs.links import add_item_links

FIXTURES = Path(__file__).parent / "fixtures" / "dhus"
ODATA = "https://apihub.copernicus.eu/apihub/odata/v1"


def recorded(name: str) -> Any:
    folder = "odata" if "Products" in name else "opensearch"
    return orjson.loads((FIXTURES / folder / name).read_bytes())


def items_of(records: list[Record]) -> list[dict[str, Any]]:
    items = [to_item(r, DEFAULT_COLLECTIONS, ODATA) for r in records]
    return [i for i in items if i is not None]


def errors(item: dict[str, Any]) -> list[str]:
    """Schema errors of the item as the gateway serves it (with its links)."""
    return item_errors(add_item_links(copy.deepcopy(item), "http://mqs.test/"))


def test_s2_feed_parses_into_valid_items_with_the_recorded_values() -> None:
    feed = parse_json_feed(recorded("sentinelsat-2023__test_s2_cloudcover__01_search.json"))
    assert feed.total == 5 and len(feed.records) == 5
    items = items_of(feed.records)
    first = items[0]
    assert first["id"] == "S2B_MSIL1C_20181219T142029_N0207_R010_T20MPS_20181219T160056"
    assert first["collection"] == "sentinel-2-l1c"
    props = first["properties"]
    assert props["datetime"] == "2018-12-19T14:20:29.024Z"
    assert props["created"] == "2018-12-19T17:33:46.286Z"
    assert props["eo:cloud_cover"] == 3.6476
    assert props["sat:absolute_orbit"] == 9331 and props["sat:relative_orbit"] == 10
    assert props["sat:orbit_state"] == "descending"
    assert props["grid:code"] == "MGRS-20MPS"
    assert props["platform"] == "sentinel-2b" and props["instruments"] == ["msi"]
    assert props["processing:level"] == "L1C" and props["processing:version"] == "02.07"
    # The WKT footprint is lon lat: the tile lies in Brazil (lon -61, lat -8).
    west, south, east, north = first["bbox"]
    assert (west, south, east, north) == pytest.approx(
        (-61.331024, -8.2268093, -61.09546, -7.2333214)
    )
    product = "https://apihub.copernicus.eu/apihub/odata/v1/Products('bf652bc4-299c-4c39-9238-ee5a3fdc0d3e')"
    assert first["assets"]["product"]["href"] == f"{product}/$value"
    assert first["assets"]["thumbnail"]["href"] == f"{product}/Products('Quicklook')/$value"
    assert first["assets"]["manifest"]["href"] == (
        f"{product}/Nodes('S2B_MSIL1C_20181219T142029_N0207_R010_T20MPS_20181219T160056.SAFE')"
        "/Nodes('manifest.safe')/$value"
    )
    for item in items:
        assert errors(item) == []
        assert pystac.Item.from_dict(item).id == item["id"]
        assert item["properties"]["eo:cloud_cover"] <= 10  # the recorded query's own filter


def test_s1_feed_items_have_sar_and_sat_properties() -> None:
    feed = parse_json_feed(recorded("sentinelsat-2023__test_footprints_s1__01_search.json"))
    items = items_of(feed.records)
    assert len(items) == feed.total == 19
    first = items[0]
    assert first["id"] == "S1A_S2_GRDH_1SDH_20141220T100437_20141220T100501_003801_0048A7_0135"
    assert first["collection"] == "sentinel-1-grd"
    props = first["properties"]
    assert props["sar:polarizations"] == ["HH", "HV"]
    assert props["sar:instrument_mode"] == "SM"
    assert props["sar:frequency_band"] == "C" and props["sar:product_type"] == "GRD"
    assert props["start_datetime"] == props["datetime"] == "2014-12-20T10:04:37.543Z"
    assert props["end_datetime"] > props["start_datetime"]
    assert props["platform"] == "sentinel-1a"
    assert "eo:cloud_cover" not in props
    geometry = shape(first["geometry"])
    assert geometry.is_valid and geometry.bounds[0] == pytest.approx(-65.468689)
    for item in items:
        assert errors(item) == []


def test_one_result_is_an_object_and_none_has_no_entry() -> None:
    one = parse_json_feed(recorded("sentinelsat-2023__test_check_existing__03_search.json"))
    assert len(one.records) == 1 and one.total == 1
    assert one.records[0].name.startswith("S3B_SR_1_SRA____20230308T203304")
    assert items_of(one.records)[0]["collection"] == "sentinel-3-sral-l1-sra"
    none = parse_json_feed(recorded("sentinelsat-2018__test_area_relation__03_search.json"))
    assert none.records == [] and none.total == 0


def test_single_element_typed_groups_are_read() -> None:
    # In this recording `double` (cloud cover) is one object, not a list.
    feed = parse_json_feed(recorded("sentinelsat-2023__test_s2_cloudcover__01_search.json"))
    assert all("cloudcoverpercentage" in r.fields for r in feed.records)


def test_paged_feed_reports_the_total() -> None:
    feed = parse_json_feed(recorded("sentinelsat-2023__test_large_query__07_search.json"))
    assert feed.total == 630 and len(feed.records) == 30
    assert len({r.uuid for r in feed.records}) == 30


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("sentinelsat-2023__test_invalid_query__01_search.json", "undefined field xxx"),
        ("sentinelsat-2023__test_unicode_support__01_search.json", "SyntaxError"),
    ],
)
def test_errors_inside_a_200_feed_are_errors(name: str, message: str) -> None:
    with pytest.raises(FeedError, match=message) as raised:
        parse_json_feed(recorded(name))
    assert raised.value.code == "400"


def test_odata_product_with_attributes() -> None:
    feed = parse_odata_products(
        recorded("sentinelsat-2018__test_get_product_odata_full__01_Products-8df46c9e.json")
    )
    (item,) = items_of(feed.records)
    assert item["id"] == "S1A_EW_GRDM_1SDV_20151121T100356_20151121T100429_008701_00C622_A0EC"
    props = item["properties"]
    assert props["datetime"] == "2015-11-21T10:03:56.675Z"  # /Date(1448100236675)/
    assert props["end_datetime"] == "2015-11-21T10:04:29.714Z"
    assert props["sat:relative_orbit"] == 54 and props["sat:absolute_orbit"] == 8701
    assert props["sat:orbit_state"] == "descending"
    assert props["sar:polarizations"] == ["VV", "VH"] and props["sar:instrument_mode"] == "EW"
    product = item["assets"]["product"]
    assert product["file:size"] == 143549851
    assert product["file:checksum"] == "d50110d5e4df5c38c6e97bf7e7bd540ab21c05"
    # The JTS footprint attribute (lon lat) wins over the GML (lat,lon) one; both agree.
    expected = shapely.Polygon(
        [
            (-63.852531, -5.880887),
            (-67.495872, -5.075419),
            (-67.066071, -3.084356),
            (-63.430576, -3.880541),
        ]
    )
    assert shape(item["geometry"]).equals(expected)
    assert errors(item) == []


def test_odata_product_without_attributes_uses_gml_and_the_name() -> None:
    feed = parse_odata_products(
        recorded("sentinelsat-2021-05__smallest_online_products__01_Products.json")
    )
    items = items_of(feed.records)
    assert [i["collection"] for i in items] == ["sentinel-1-ocn"] * 4 + ["sentinel-1-slc"] * 2
    for item in items:
        # GML coordinates are "lat,lon": the geometry must come out lon/lat.
        lons = [p[0] for p in item["geometry"]["coordinates"][0]]
        assert all(-180 <= lon <= 180 for lon in lons)
        assert errors(item) == []


def test_odata_dates_and_errors() -> None:
    assert odata_instant("/Date(1448112124992)/") == "2015-11-21T13:22:04.992Z"
    assert odata_instant(None) is None
    with pytest.raises(FeedError, match="Invalid key"):
        parse_odata_products(
            recorded(
                "sentinelsat-2023__test_get_product_info_bad_key__01_Products-invalid-xyz.json"
            )
        )


def test_gml_footprint_is_lat_lon() -> None:
    gml = recorded("sentinelsat-2023__test_s2_cloudcover__01_search.json")["feed"]["entry"][0]
    fields = {e["name"]: e["content"] for e in gml["str"]}
    record = Record(uuid="bf652bc4-299c-4c39-9238-ee5a3fdc0d3e", fields={**fields, "footprint": ""})
    record.fields["beginposition"] = "2018-12-19T14:20:29.024Z"
    from_gml = to_item(record, DEFAULT_COLLECTIONS, ODATA)
    assert from_gml is not None
    wkt_record = Record(
        uuid=record.uuid, fields={**fields, "beginposition": "2018-12-19T14:20:29.024Z"}
    )
    from_wkt = to_item(wkt_record, DEFAULT_COLLECTIONS, ODATA)
    assert from_wkt is not None
    assert shape(from_gml["geometry"]).equals(shape(from_wkt["geometry"]))


def test_atom_feed_reads_like_json() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns="http://www.w3.org/2005/Atom">
<opensearch:totalResults>1</opensearch:totalResults>
<entry><title>S2B_MSIL2A_20211024T095031_N0301_R079_T33UXQ_20211024T121234</title>
<id>0b1c7a49-8e2f-4d5c-9a7e-2d8b1f7e4c11</id>
<date name="beginposition">2021-10-24T09:50:31.024Z</date>
<double name="cloudcoverpercentage">12.5</double>
<int name="relativeorbitnumber">79</int>
<str name="platformname">Sentinel-2</str><str name="producttype">S2MSI2A</str>
<str name="footprint">MULTIPOLYGON (((15 49.5, 16.5 49.5, 16.5 50.5, 15 50.5, 15 49.5)))</str>
</entry></feed>"""
    feed = parse_atom_feed(atom)
    (item,) = items_of(feed.records)
    assert feed.total == 1
    assert item["properties"]["eo:cloud_cover"] == 12.5
    assert item["properties"]["sat:relative_orbit"] == 79
    assert item["geometry"]["type"] == "Polygon"


def test_hostile_xml_is_refused() -> None:
    bomb = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&lol2;</title></feed>"""
    with pytest.raises(FeedError):
        parse_atom_feed(bomb)
    assert parse_manifest(bomb) == []


def test_manifest_files_become_assets_with_safe_hrefs() -> None:
    manifest = (
        b"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"><dataObjectSection>
<dataObject ID="IMG_DATA_Band_B04_10m_Tile1_Data">
<byteStream mimeType="application/octet-stream" size="123"><fileLocation locatorType="URL"
 href="./GRANULE/L2A_T33UXQ_A033009_20211024T095031/IMG_DATA/R10m/%s"/>
<checksum checksumName="MD5">0123456789ABCDEF0123456789ABCDEF</checksum></byteStream></dataObject>
<dataObject ID="evil"><byteStream mimeType="text/plain" size="1">
<fileLocation locatorType="URL" href="../../etc/passwd"/></byteStream></dataObject>
<dataObject ID="S2_Level-2A_Product_Metadata"><byteStream mimeType="text/xml" size="9">
<fileLocation locatorType="URL" href="./MTD_MSIL2A.xml"/></byteStream></dataObject>
</dataObjectSection></xfdu:XFDU>"""
        % b"T33UXQ_20211024T095031_B04_10m.jp2"
    )
    product = f"{ODATA}/Products('0b1c7a49-8e2f-4d5c-9a7e-2d8b1f7e4c11')"
    assets = file_assets(parse_manifest(manifest), product, "S2B_MSIL2A_X.SAFE")
    assert set(assets) == {"B04_10m", "product_metadata"}
    band = assets["B04_10m"]
    assert band["href"] == (
        f"{product}/Nodes('S2B_MSIL2A_X.SAFE')/Nodes('GRANULE')/Nodes('L2A_T33UXQ_A033009_20211024T095031')"
        "/Nodes('IMG_DATA')/Nodes('R10m')/Nodes('T33UXQ_20211024T095031_B04_10m.jp2')/$value"
    )
    assert band["eo:bands"] == [{"name": "B04", "common_name": "red", "center_wavelength": 0.665}]
    assert band["gsd"] == 10 and band["file:size"] == 123
    assert band["file:checksum"] == "d501100123456789abcdef0123456789abcdef"
