"""Golden tests: real recorded CDSE OData answers (tests/fixtures/cdse) -> the expected items."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import orjson
import pystac
import pytest
from shapely.geometry import shape
from stac_schema import item_errors

from adapters.base import BadBackendResponse
from adapters.cdse_odata.adapter import CdseOdataAdapter
from adapters.cdse_odata.collections import DEFAULT_COLLECTIONS, ProductSet
from adapters.cdse_odata.items import to_item
from adapters.cdse_odata.mapping import ODataError, checksum, footprint, parse_page
from mqs.config import BackendConfig
from mqs.links import add_item_links
from mqs.query import SearchQuery

FIXTURES = Path(__file__).parent / "fixtures" / "cdse"
ODATA = "https://catalogue.dataspace.copernicus.eu/odata/v1"
ALL_S1 = {"sentinel-1-aux": ProductSet("SENTINEL-1", ())}  # every SENTINEL-1 product


def recorded(page: int) -> Any:
    name = f"cdsetool__s1-odata-paging__0{page}_Products.json"
    return orjson.loads((FIXTURES / name).read_bytes())


def products(page: int) -> list[dict[str, Any]]:
    return parse_page(recorded(page)).products


def errors(item: dict[str, Any]) -> list[str]:
    """Schema errors of the item as the gateway serves it (with its links)."""
    return item_errors(add_item_links(copy.deepcopy(item), "http://mqs.test/"))


def test_the_recorded_pages_have_count_and_next_links_as_cdse_pages_do() -> None:
    pages = [parse_page(recorded(n)) for n in range(1, 6)]
    assert [len(p.products) for p in pages] == [10, 10, 10, 10, 7]
    assert [p.count for p in pages] == [47, None, None, None, None]  # counted on page 1 only
    assert [p.next_link is not None for p in pages] == [True, True, True, True, False]
    names = [p["Name"] for page in pages for p in page.products]
    assert len(set(names)) == 47


def test_recorded_products_become_valid_items() -> None:
    items = [to_item(p, ALL_S1, ODATA) for n in range(1, 6) for p in products(n)]
    assert all(item is not None for item in items)
    first = items[0]
    assert first is not None
    assert first["id"] == "S1A_AUX_INS_V20140406T010000_G20140409T142540"  # Name minus .SAFE
    assert first["collection"] == "sentinel-1-aux"
    assert first["geometry"] is None and "bbox" not in first  # auxiliary files: no footprint
    props = first["properties"]
    assert props["datetime"] == "2014-04-06T01:00:00.000000Z"
    assert "start_datetime" not in props  # Start == End
    assert props["created"] == "2025-07-17T11:55:07.282635Z"  # PublicationDate
    assert props["updated"] == "2025-10-10T17:56:18.034265Z"  # ModificationDate
    assert props["platform"] == "sentinel-1a" and props["constellation"] == "sentinel-1"
    assert props["product:type"] == "AUX_INS"
    assert props["cdse:online"] is True
    assert props["cdse:eviction_date"] == "9999-12-31T23:59:59.999999Z"
    assert not {"eo:cloud_cover", "sat:absolute_orbit", "sar:polarizations"} & set(props)
    product = first["assets"]["product"]
    assert product["href"] == f"{ODATA}/Products(67360f3a-f36b-11ef-9d3f-0050561a7772)/$value"
    assert product["file:size"] == 728976
    assert product["file:checksum"] == "d50110" + "23383d85c5231487ce13d1c10aeb8e7b"
    assert product["alternate"]["s3"]["href"] == (
        "s3://eodata/Sentinel-1/AUX/AUX_INS/2014/04/06/"
        "S1A_AUX_INS_V20140406T010000_G20140409T142540.SAFE.zip"
    )
    assert first["links"] == [
        {
            "rel": "via",
            "href": f"{ODATA}/Products(67360f3a-f36b-11ef-9d3f-0050561a7772)",
            "type": "application/json",
        }
    ]
    for item in items:
        assert item is not None
        assert errors(item) == [], item["id"]
        assert pystac.Item.from_dict(item).id == item["id"]


def test_names_without_safe_suffix_and_platforms_without_serial() -> None:
    by_name = {p["Name"]: p for n in range(1, 6) for p in products(n)}
    gnss = by_name["S1A_OPER_AUX_GNSSRD_POD__20171211T085403_V20140406T011619_20140406T235939"]
    item = to_item(gnss, ALL_S1, ODATA)
    assert item is not None and item["id"] == gnss["Name"]  # no suffix: the name as it is
    assert item["properties"]["start_datetime"] == "2014-04-06T01:16:35.000000Z"
    assert item["properties"]["end_datetime"] == "2014-04-06T23:59:55.000000Z"
    orbit = next(n for n in by_name if n.endswith(".EOF"))
    assert to_item(by_name[orbit], ALL_S1, ODATA)["id"] == orbit  # type: ignore[index]
    scs = next(p for n, p in by_name.items() if n.startswith("S1__AUX_SCS"))
    item = to_item(scs, ALL_S1, ODATA)
    assert item is not None
    assert "platform" not in item["properties"]  # platformSerialIdentifier "_": both satellites
    assert item["properties"]["constellation"] == "sentinel-1"


def test_auxiliary_files_are_in_none_of_the_default_collections() -> None:
    found = [to_item(p, DEFAULT_COLLECTIONS, ODATA) for n in range(1, 6) for p in products(n)]
    assert found == [None] * 47
    aux_ins = {"aux-ins": ProductSet("SENTINEL-1", ("AUX_INS",))}
    kept = [to_item(p, aux_ins, ODATA) for p in products(1)]
    assert sum(item is not None for item in kept) == 3  # page 1 has three AUX_INS files


def _grd_product() -> dict[str, Any]:
    """A recorded entity given the footprints and SAR attributes of CDSE's documented GRD
    example (documentation.dataspace.copernicus.eu release notes, 2024-09-02)."""
    product = copy.deepcopy(products(1)[0])
    product["Name"] = "S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE"
    product["Footprint"] = (
        "geography'SRID=4326;POLYGON ((-79.007256 -3.315, -76.7 -2.82, -76.3 -4.7, "
        "-78.6 -5.2, -79.007256 -3.315))'"
    )
    product["GeoFootprint"] = None
    attributes = [
        ("platformShortName", "String", "SENTINEL-1"),
        ("platformSerialIdentifier", "String", "A"),
        ("productType", "String", "IW_GRDH_1S"),
        ("operationalMode", "String", "IW"),
        ("polarisationChannels", "String", "VV&VH"),
        ("orbitDirection", "String", "ASCENDING"),
        ("orbitNumber", "Integer", 54172),
        ("relativeOrbitNumber", "Integer", 18),
        ("processingLevel", "String", "LEVEL1"),
    ]
    product["Attributes"] = [
        {"@odata.type": f"#OData.CSC.{t}Attribute", "Name": n, "Value": v, "ValueType": t}
        for n, t, v in attributes
    ]
    return product


def test_sar_products_get_sar_and_sat_properties_and_a_lon_lat_geometry() -> None:
    item = to_item(_grd_product(), DEFAULT_COLLECTIONS, ODATA)
    assert item is not None and item["collection"] == "sentinel-1-grd"
    assert item["id"] == "S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E"
    props = item["properties"]
    assert props["sar:polarizations"] == ["VV", "VH"]
    assert props["sar:instrument_mode"] == "IW" and props["sar:product_type"] == "GRD"
    assert props["product:type"] == "GRD"  # as DHuS and STAC APIs say it, not IW_GRDH_1S
    assert props["sat:orbit_state"] == "ascending"
    assert props["sat:absolute_orbit"] == 54172 and props["sat:relative_orbit"] == 18
    assert props["processing:level"] == "L1" and props["instruments"] == ["sar"]
    assert item["bbox"] == pytest.approx([-79.007256, -5.2, -76.3, -2.82])  # lon, lat order
    assert errors(item) == []


def test_geofootprint_is_preferred_and_broken_footprints_are_none() -> None:
    product = _grd_product()
    product["GeoFootprint"] = {
        "type": "MultiPolygon",
        "coordinates": [[[[10, 50], [11, 50], [11, 51], [10, 51], [10, 50]]]],
    }
    assert shape(orjson.loads(orjson.dumps(product["GeoFootprint"]))).equals(footprint(product))
    assert footprint(product).geom_type == "Polygon"  # type: ignore[union-attr]
    product["GeoFootprint"] = {"type": "Polygon", "coordinates": "nonsense"}
    product["Footprint"] = "geography'SRID=4326;POLYGON ((1 2, 3'"
    assert footprint(product) is None
    product["Footprint"] = "POLYGON ((1 1, 2 1, 2 2, 1 1))"  # not CDSE's geography literal
    assert footprint(product) is None


def test_checksums_become_multihashes() -> None:
    product = copy.deepcopy(products(1)[0])
    assert checksum(product) == "d50110" + "23383d85c5231487ce13d1c10aeb8e7b"
    product["Checksum"] = [c for c in product["Checksum"] if c["Algorithm"] == "BLAKE3"]
    assert checksum(product) == "1e20" + (
        "6a7eacd5bd2ac39a1761270e3194302951d4db3a3ca44d0f2917b4473c45e955"
    )
    product["Checksum"] = [{"Algorithm": "MD5", "Value": "not-hex"}]
    assert checksum(product) is None


def test_error_bodies_are_not_read_as_pages() -> None:
    documented = {
        "detail": [
            {
                "type": "less_than_equal",
                "loc": ["query", "$skip"],
                "msg": "Input should be less than or equal to 10000",
                "input": "10001",
                "ctx": {"le": 10000},
            }
        ]
    }
    with pytest.raises(ODataError, match="less than or equal to 10000"):
        parse_page(documented)
    with pytest.raises(ODataError, match="Invalid filter"):
        parse_page({"error": {"code": "400", "message": "Invalid filter"}})
    with pytest.raises(ODataError):
        parse_page({"value": "no list"})


def _replay(request: httpx.Request) -> httpx.Response:
    """The recorded pages, by the ``$skip`` the adapter asks for (0, 10, ..., 40)."""
    skip = int(request.url.params.get("$skip", "0"))
    if request.url.path != "/odata/v1/Products" or skip % 10 or not 0 <= skip <= 40:
        return httpx.Response(400, json={"detail": "unexpected request"})
    return httpx.Response(200, content=orjson.dumps(recorded(skip // 10 + 1)))


async def test_the_adapter_pages_through_the_recorded_answers() -> None:
    backend = BackendConfig(
        id="cdse",
        kind="cdse-odata",
        url="https://catalogue.dataspace.copernicus.eu",
        collections={"sentinel-1-aux": "SENTINEL-1"},
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(_replay)) as client:
        adapter = CdseOdataAdapter(backend, client)
        query = SearchQuery(collections=("sentinel-1-aux",))
        state, found, matched = None, [], []
        for _ in range(10):
            page = await adapter.search(query, state, 10)
            found += [hit.product_id for hit in page.hits]
            matched.append(page.matched)
            if (state := page.next_state) is None:
                break
    assert len(found) == len(set(found)) == 47
    assert matched == [47, None, None, None, None]


async def test_backend_errors_become_backend_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "$skip" in request.url.params:
            return httpx.Response(422, json={"detail": [{"msg": "Input should be less"}]})
        return httpx.Response(200, json={"detail": "Internal error"})

    backend = BackendConfig(
        id="cdse", kind="cdse-odata", url="https://cdse.test", collections=["sentinel-2-l2a"]
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        adapter = CdseOdataAdapter(backend, client)
        with pytest.raises(BadBackendResponse, match="CDSE OData error: Internal error"):
            await adapter.search(SearchQuery(), None, 10)
        with pytest.raises(BadBackendResponse, match="HTTP 422") as failed:
            await adapter.search(SearchQuery(), {"s": 20}, 10)
        assert failed.value.status == 422
        with pytest.raises(BadBackendResponse, match=r"\$skip=10000: narrow the search"):
            await adapter.search(SearchQuery(), {"s": 10010}, 10)


async def test_collections_not_served_never_search_the_whole_catalogue() -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, content=orjson.dumps(recorded(1)))

    backend = BackendConfig(
        id="cdse", kind="cdse-odata", url="https://cdse.test", collections=["sentinel-2-l2a"]
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        adapter = CdseOdataAdapter(backend, client)
        page = await adapter.search(SearchQuery(collections=("sentinel-1-grd",)), None, 10)
        assert page == ([], None, 0) and asked == []
        assert await adapter.get_item("sentinel-1-grd", "S1A_AUX_INS_V20140406T010000") is None
        assert len(asked) == 0
