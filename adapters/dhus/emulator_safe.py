"""The SAFE products behind the records: manifest, file tree, file bytes, zip and quick-look.

Each product gets a realistic ``manifest.safe`` (XFDU) listing the files a real product of
its kind holds (S1 GRD/SLC annotation, calibration, noise, RFI, measurement TIFFs and
previews with the dataObject IDs and repIDs ESA uses; S2 L1C/L2A metadata, auxiliary data and
JPEG 2000 bands per resolution). Every listed file answers small deterministic bytes whose
size and MD5 are the ones the manifest states, so a client verifying them succeeds.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from xml.sax.saxutils import quoteattr

from adapters.dhus.emulator_records import Product, iso_ms

_COMMON_BANDS = ("AOT", "B01", "B02", "B03", "B04", "B05", "B06", "B07")
_L2A_BANDS = {
    "10m": ("AOT", "B02", "B03", "B04", "B08", "TCI", "WVP"),
    "20m": (*_COMMON_BANDS, "B11", "B12", "B8A", "SCL", "TCI", "WVP"),
    "60m": (*_COMMON_BANDS, "B09", "B11", "B12", "B8A", "SCL", "TCI", "WVP"),
}
_L1C_BANDS = {"B01": "60m_1", "B02": "10m_1", "B03": "10m_2", "B04": "10m_3", "B05": "20m_1"}
_L1C_BANDS |= {"B06": "20m_2", "B07": "20m_3", "B08": "10m_4", "B09": "60m_2", "B10": "60m_3"}
_L1C_BANDS |= {"B11": "20m_5", "B12": "20m_6", "B8A": "20m_4"}
_S1_KINDS = (
    ("product", "s1Level1ProductSchema", "annotation/{}.xml"),
    ("noise", "s1Level1NoiseSchema", "annotation/calibration/noise-{}.xml"),
    ("rfi", "s1Level1RfiSchema", "annotation/rfi/rfi-{}.xml"),
    ("calibration", "s1Level1CalibrationSchema", "annotation/calibration/calibration-{}.xml"),
)
_S1_SCHEMAS = {
    "s1Level1ProductSchema": "s1-level-1-product",
    "s1Level1NoiseSchema": "s1-level-1-noise",
    "s1Level1RfiSchema": "s1-level-1-rfi",
    "s1Level1CalibrationSchema": "s1-level-1-calibration",
    "s1ObjectTypesSchema": "s1-object-types",
    "s1Level1MeasurementSchema": "s1-level-1-measurement",
    "s1Level1ProductPreviewSchema": "s1-product-preview",
    "s1Level1QuickLookSchema": "s1-level-1-quicklook",
    "s1Level1MapOverlaySchema": "s1-map-overlay",
}
_MIME = {"xml": "application/xml", "safe": "application/xml", "xsd": "application/xml"}
_MIME |= {"xsl": "application/xml", "jp2": "image/jp2", "tiff": "image/tiff"}
_MIME |= {"png": "image/png", "jpg": "image/jpeg", "html": "text/html"}
_MIME |= {"kml": "application/vnd.google-earth.kml+xml"}
_MAGIC = {"jp2": b"\x00\x00\x00\x0cjP  \r\n\x87\n", "tiff": b"II*\x00\x08\x00\x00\x00"}
_MAGIC |= {"png": b"\x89PNG\r\n\x1a\n"}


_MEASURE = "Measurement Data Unit"


@dataclass(frozen=True)
class SafeFile:
    """One file of a SAFE product as its manifest lists it."""

    path: str  # below the .SAFE directory, e.g. "measurement/s1a-iw-grd-vv-...-001.tiff"
    object_id: str
    mime: str  # the manifest's byteStream mimeType
    rep_id: str = ""
    unit: str = "Metadata Unit"


def content_type(path: str) -> str:
    return _MIME.get(
        path.rsplit(".", 1)[-1].lower() if "." in path else "", "application/octet-stream"
    )


# --- file lists --------------------------------------------------------------------------------
def _s1_stem(p: Product) -> tuple[str, list[str], list[str], str]:
    mode = str(p.fields["sensoroperationalmode"]).lower()
    kind = str(p.fields["producttype"]).lower()
    swaths = [f"{mode}{i}" for i in (1, 2, 3)] if kind == "slc" else [mode]
    pols = [x.lower() for x in str(p.fields["polarisationmode"]).split()]
    times = f"{p.begin:%Y%m%dt%H%M%S}-{p.end:%Y%m%dt%H%M%S}"
    tail = f"{times}-{p.fields['orbitnumber']:06d}-{p.fields['missiondatatakeid']:06x}"
    return kind, swaths, pols, tail


def _s1_files(p: Product) -> list[SafeFile]:
    kind, swaths, pols, tail = _s1_stem(p)
    annotations, measurements = [], []
    for pol in pols[::-1]:  # cross-polarisation first, as ESA lists them
        for s, swath in enumerate(swaths):
            number = pols[::-1].index(pol) * 3 + s + 1 if kind == "slc" else pols.index(pol) + 1
            base = f"{p.mission.lower()}-{swath}-{kind}-{pol}-{tail}-{number:03d}"
            ident = base.replace("-", "")
            for prefix, rep, path in _S1_KINDS:
                annotations.append(SafeFile(path.format(base), prefix + ident, "text/xml", rep))
            measurements.append(
                SafeFile(
                    f"measurement/{base}.tiff",
                    ident,
                    "application/octet-stream",
                    "s1Level1MeasurementSchema",
                    _MEASURE,
                )
            )
    previews = [
        SafeFile("preview/map-overlay.kml", "mapoverlay", "text/xml", "s1Level1MapOverlaySchema"),
        SafeFile(
            "preview/product-preview.html",
            "productpreview",
            "text/xml",
            "s1Level1ProductPreviewSchema",
        ),
    ]
    quicklook = SafeFile(
        "preview/quick-look.png",
        "quicklook",
        "application/octet-stream",
        "s1Level1QuickLookSchema",
        _MEASURE,
    )
    return annotations + previews + measurements + [quicklook]


def _s2_dirs(p: Product) -> tuple[str, str, str, str]:
    level = "L" + str(p.fields["processinglevel"])[-2:]
    sensing = f"{p.begin:%Y%m%dT%H%M%S}"
    processed = p.name.rsplit("_", 1)[-1] if p.name.count("_") >= 6 else sensing
    tile = p.tile
    granule = f"GRANULE/{level}_T{tile}_A{p.fields['orbitnumber']:06d}_{sensing}"
    return level, granule, f"DATASTRIP/DS_EPAE_{processed}_S{sensing}", f"T{tile}_{sensing}"


def _s2_bands(level: str, granule: str, stem: str) -> list[SafeFile]:
    octet, unit = "application/octet-stream", _MEASURE
    if level == "L2A":
        return [
            SafeFile(
                f"{granule}/IMG_DATA/R{res}/{stem}_{band}_{res}.jp2",
                f"IMG_DATA_Band_{band}_{res}_Tile1_Data",
                octet,
                unit=unit,
            )
            for res, bands in _L2A_BANDS.items()
            for band in bands
        ]
    files = [
        SafeFile(f"{granule}/IMG_DATA/{stem}_{band}.jp2", f"IMG_DATA_Band_{key}_Tile1_Data", octet)
        for band, key in _L1C_BANDS.items()
    ]
    files.append(
        SafeFile(f"{granule}/IMG_DATA/{stem}_TCI.jp2", "IMG_DATA_Band_TCI_Tile1_Data", octet)
    )
    return [SafeFile(f.path, f.object_id, f.mime, unit=unit) for f in files]


def _s2_files(p: Product) -> list[SafeFile]:
    level, granule, datastrip, stem = _s2_dirs(p)
    tag = f"S2_Level-{level[1:]}"
    octet = "application/octet-stream"
    files = [
        SafeFile(f"MTD_MSI{level}.xml", f"{tag}_Product_Metadata", "text/xml"),
        SafeFile("INSPIRE.xml", "INSPIRE_Metadata", "text/xml"),
        SafeFile("HTML/UserProduct_index.html", "HTML_Presentation", "octet"),
        SafeFile("HTML/UserProduct_index.xsl", "HTML_Presentation_Stylesheet", "octet"),
        SafeFile(f"{datastrip}/MTD_DS.xml", f"{tag}_Datastrip1_Metadata", "application/xml"),
        SafeFile(f"{granule}/AUX_DATA/AUX_CAMSFO", "CAMS_Tile1_Data", octet, unit=_MEASURE),
        SafeFile(f"{granule}/AUX_DATA/AUX_ECMWFT", "ECMWF_Tile1_Data", octet, unit=_MEASURE),
    ]
    files += _s2_bands(level, granule, stem)
    files.append(SafeFile(f"{granule}/MTD_TL.xml", f"{tag}_Tile1_Metadata", "application/xml"))
    return files


@lru_cache(maxsize=4096)
def safe_files(p: Product) -> tuple[SafeFile, ...]:
    """The files the product's manifest lists (the manifest itself not included)."""
    return tuple(_s1_files(p) if p.family == "S1" else _s2_files(p))


# --- bytes -------------------------------------------------------------------------------------
def file_bytes(p: Product, path: str) -> bytes:
    """Small deterministic content of ``path`` (``manifest.safe`` is the real manifest)."""
    if path == "manifest.safe":
        return manifest(p)
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    digest = hashlib.sha256(f"{p.name}/{path}".encode()).hexdigest()
    if ext in ("xml", "xsd", "xsl", "kml"):
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<!-- emulated {path} of {p.name} -->\n<emulated digest={quoteattr(digest)}/>\n"
        ).encode()
    if ext == "html":
        return f"<html><body><p>{p.name}: {path}</p></body></html>\n".encode()
    if ext == "jpg":
        return quicklook_jpeg()
    return _MAGIC.get(ext, b"") + bytes.fromhex(digest) * 8


def _object(f: SafeFile, content: bytes) -> str:
    rep = f" repID={quoteattr(f.rep_id)}" if f.rep_id else ""
    return (
        f"    <dataObject ID={quoteattr(f.object_id)}{rep}>\n"
        f'      <byteStream mimeType="{f.mime}" size="{len(content)}">\n'
        f'        <fileLocation locatorType="URL" href="./{f.path}"/>\n'
        f'        <checksum checksumName="MD5">{hashlib.md5(content).hexdigest()}</checksum>\n'
        "      </byteStream>\n    </dataObject>\n"
    )


def _units(p: Product, files: tuple[SafeFile, ...]) -> str:
    lines = []
    for f in files:
        rep = f" repID={quoteattr(f.rep_id)}" if f.rep_id else ""
        ident = "" if f.rep_id else f' ID="{f.object_id.removesuffix("_Data")}_Unit"'
        dmd = ""
        if f.rep_id == "s1Level1MeasurementSchema":
            ids = [k + f.object_id + "Annotation" for k, _, _ in _S1_KINDS]
            dmd = f' dmdID="{" ".join(ids)} "'
        lines.append(
            f'      <xfdu:contentUnit{ident} unitType="{f.unit}"{rep}{dmd}>\n'
            f'        <dataObjectPointer dataObjectID="{f.object_id}"/>\n'
            "      </xfdu:contentUnit>\n"
        )
    return "".join(lines)


def _wrap(ident: str, text: str, body: str, category: str = "DMD") -> str:
    classification = "PROVENANCE" if category == "PDI" else "DESCRIPTION"
    return (
        f'    <metadataObject ID="{ident}" classification="{classification}" '
        f'category="{category}">\n'
        f'      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="{text}">\n'
        f"        <xmlData>\n          {body}\n        </xmlData>\n"
        "      </metadataWrap>\n    </metadataObject>\n"
    )


def _descriptions(p: Product) -> str:
    f = p.fields
    coords = str(f["gmlfootprint"]).split("<gml:coordinates>")[1].split("<")[0]
    family, number = (
        ("SENTINEL-1", p.mission[2]) if p.family == "S1" else ("SENTINEL", p.mission[1:])
    )
    start, stop = iso_ms(p.begin)[:-1], iso_ms(p.end)[:-1]
    nssdc = f"<safe:nssdcIdentifier>{f.get('platformidentifier', '')}</safe:nssdcIdentifier>"
    orbit = f'<safe:orbitNumber type="start">{f["orbitnumber"]}</safe:orbitNumber>'
    relative = f'<safe:relativeOrbitNumber type="start">{f["relativeorbitnumber"]}'
    footprint = '<safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">'
    made = f'start="{iso_ms(p.ingestion)[:-1]}" stop="{iso_ms(p.created)[:-1]}"'
    wraps = {
        "processing": ("Processing", f'<safe:processing name="Product Generation" {made}/>'),
        "platform": (
            "Platform Description",
            f"<safe:platform>{nssdc}<safe:familyName>{family}</safe:familyName>"
            f"<safe:number>{number}</safe:number></safe:platform>",
        ),
        "measurementOrbitReference": (
            "Orbit Reference",
            f"<safe:orbitReference>{orbit}{relative}</safe:relativeOrbitNumber>"
            "</safe:orbitReference>",
        ),
        "acquisitionPeriod": (
            "Acquisition Period",
            f"<safe:acquisitionPeriod><safe:startTime>{start}</safe:startTime>"
            f"<safe:stopTime>{stop}</safe:stopTime></safe:acquisitionPeriod>",
        ),
        "measurementFrameSet": (
            "Frame Set",
            f"<safe:frameSet><safe:frame>{footprint}<gml:coordinates>{coords}</gml:coordinates>"
            "</safe:footPrint></safe:frame></safe:frameSet>",
        ),
    }
    return "".join(
        _wrap(ident, text, body, "PDI" if ident == "processing" else "DMD")
        for ident, (text, body) in wraps.items()
    )


def _metadata(p: Product, files: tuple[SafeFile, ...]) -> str:
    out = [_descriptions(p)]
    for fl in files:
        if fl.rep_id and fl.rep_id != "s1Level1MeasurementSchema":
            out.append(
                f'    <metadataObject ID="{fl.object_id}Annotation" classification="DESCRIPTION" '
                f'category="DMD">\n      <dataObjectPointer dataObjectID="{fl.object_id}"/>\n'
                "    </metadataObject>\n"
            )
    if p.family == "S1":
        out += [
            f'    <metadataObject ID="{ident}" classification="SYNTAX" category="REP">\n'
            '      <metadataReference mimeType="text/xml" vocabularyName="XML Schema" '
            f'locatorType="URL" href="./support/{xsd}.xsd"/>\n    </metadataObject>\n'
            for ident, xsd in _S1_SCHEMAS.items()
        ]
    return "".join(out)


def _header(p: Product) -> tuple[str, str]:
    if p.family == "S1":
        mode, kind = p.fields["sensoroperationalmode"], p.fields["producttype"]
        version = f"esa/safe/sentinel-1.0/sentinel-1/sar/level-1/{str(kind).lower()}/standard/"
        namespaces = (
            'xmlns:safe="http://www.esa.int/safe/sentinel-1.0" '
            'xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" '
            'xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1"'
        )
        unit = (
            'unitType="SAFE Archive Information Package" '
            f'textInfo="Sentinel-1 {mode} Level-1 {kind} Product" dmdID="acquisitionPeriod '
            'platform generalProductInformation measurementOrbitReference measurementFrameSet" '
            'pdiID="processing"'
        )
        return f'{namespaces} version="{version}{str(mode).lower()}dp"', unit
    level = str(p.fields["processinglevel"])[-2:]
    version = f"esa/safe/sentinel/1.1/sentinel-2/msi/archive_l{level.lower()}_user_product"
    unit = (
        f'dmdID="acquisitionPeriod platform" pdiID="processing" '
        f'textInfo="SENTINEL-2 MSI Level-{level} User Product" unitType="Product_Level-{level}"'
    )
    return f'xmlns:safe="http://www.esa.int/safe/sentinel/1.1" version="{version}"', unit


@lru_cache(maxsize=1024)
def manifest(p: Product) -> bytes:
    """The product's ``manifest.safe``."""
    files = safe_files(p)
    namespaces, unit = _header(p)
    objects = "".join(_object(f, file_bytes(p, f.path)) for f in files)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<xfdu:XFDU '
        'xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:gml="http://www.opengis.net/gml" '
        f"{namespaces}>\n  <informationPackageMap>\n    <xfdu:contentUnit {unit}>\n"
        f"{_units(p, files)}    </xfdu:contentUnit>\n  </informationPackageMap>\n"
        f"  <metadataSection>\n{_metadata(p, files)}  </metadataSection>\n"
        f"  <dataObjectSection>\n{objects}  </dataObjectSection>\n</xfdu:XFDU>\n"
    ).encode()


# --- tree, zip, quick-look ---------------------------------------------------------------------
@lru_cache(maxsize=1024)
def tree(p: Product) -> dict[str, tuple[str, ...]]:
    """Directory path below the .SAFE ('' = the .SAFE itself) -> its children's names."""
    children: dict[str, list[str]] = {"": ["manifest.safe"]}
    for f in safe_files(p):
        parts = f.path.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            siblings = children.setdefault(parent, [])
            if parts[depth] not in siblings:
                siblings.append(parts[depth])
    return {k: tuple(v) for k, v in children.items()}


@lru_cache(maxsize=256)
def product_zip(p: Product) -> bytes:
    """A real, deterministic zip: ``<name>.SAFE/manifest.safe``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(f"{p.name}.SAFE/manifest.safe", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, manifest(p))
    return buffer.getvalue()


@lru_cache(maxsize=1)
def quicklook_jpeg() -> bytes:
    """A valid 1x1 grey baseline JPEG (one DC-only block, one-code Huffman tables)."""

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    huffman = bytes([1] + [0] * 15 + [0])  # one code of length 1 -> symbol 0
    return b"".join(
        [
            b"\xff\xd8",
            segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            segment(0xDB, b"\x00" + b"\x01" * 64),
            segment(0xC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00"),
            segment(0xC4, b"\x00" + huffman),
            segment(0xC4, b"\x10" + huffman),
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            b"\x3f",  # DC diff 0 ("0"), EOB ("0"), padded with ones
            b"\xff\xd9",
        ]
    )
