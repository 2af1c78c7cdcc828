"""A SAFE ``manifest.safe`` -> per-file STAC assets reached through DHuS OData ``Nodes`` (pure).

The manifest's ``dataObjectSection`` lists every file of the product with its relative path,
size and MD5. Sentinel-2 band images become assets keyed by band (``B04``, or ``B04_10m`` in
Level-2A products that hold a band at several resolutions) with ``eo:bands`` and ``gsd``;
Sentinel-1 measurement TIFFs become ``vv``/``vh`` (``iw1-vv`` in SLC products), their
annotation, calibration and noise XMLs metadata assets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from adapters.dhus.items import MD5_MULTIHASH

# band -> (common name, centre wavelength in micrometres, native resolution in metres)
S2_BANDS = {
    "B01": ("coastal", 0.443, 60),
    "B02": ("blue", 0.49, 10),
    "B03": ("green", 0.56, 10),
    "B04": ("red", 0.665, 10),
    "B05": ("rededge", 0.704, 20),
    "B06": ("rededge", 0.74, 20),
    "B07": ("rededge", 0.783, 20),
    "B08": ("nir", 0.842, 10),
    "B8A": ("nir08", 0.865, 20),
    "B09": ("nir09", 0.945, 60),
    "B10": ("cirrus", 1.375, 60),
    "B11": ("swir16", 1.61, 20),
    "B12": ("swir22", 2.19, 20),
}
_S2_IMAGE = re.compile(r"_(B\d[\dA]|TCI|SCL|AOT|WVP)(?:_(\d+)m)?\.jp2$")
_S1_FILE = re.compile(
    r"^(measurement|annotation|annotation/calibration)/"
    r"(?:(calibration|noise|rfi)-)?s1[a-d]-(?:(iw\d|ew\d|s\d|wv\d)|iw|ew|sm|wv)-[a-z]{3}-([hv]{2})-"
)
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
JP2 = "image/jp2"
GEOTIFF = "image/tiff; application=geotiff"


@dataclass(frozen=True)
class ManifestFile:
    path: str  # relative to the product's root folder, e.g. GRANULE/.../B02_10m.jp2
    size: int | None
    md5: str | None
    mime: str | None


def parse_manifest(text: bytes) -> list[ManifestFile]:
    """The files a manifest lists (empty when it is not a readable SAFE manifest)."""
    try:
        root = SafeET.fromstring(text)
    except (SafeET.ParseError, DefusedXmlException):
        return []
    files = []
    for stream in root.iter():
        if not stream.tag.endswith("byteStream"):
            continue
        location = next((c for c in stream if c.tag.endswith("fileLocation")), None)
        checksum = next((c for c in stream if c.tag.endswith("checksum")), None)
        href = (location.get("href") if location is not None else None) or ""
        path = href.removeprefix("./")
        if not path or not all(_SEGMENT.match(s) and s not in (".", "..") for s in path.split("/")):
            continue
        size = stream.get("size")
        files.append(
            ManifestFile(
                path=path,
                size=int(size) if size and size.isdigit() else None,
                md5=(checksum.text or "").strip().lower() if checksum is not None else None,
                mime=stream.get("mimeType"),
            )
        )
    return files


def node_href(product_url: str, root_folder: str, path: str) -> str:
    """``Products('id')/Nodes('X.SAFE')/Nodes('GRANULE')/.../Nodes('file')/$value``."""
    segments = [root_folder, *path.split("/")]
    nodes = "/".join(
        f"Nodes('{quote(s.replace(chr(39), chr(39) * 2), safe='')}')" for s in segments
    )
    return f"{product_url}/{nodes}/$value"


def _file_fields(file: ManifestFile) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if file.size is not None:
        fields["file:size"] = file.size
    if file.md5 and re.fullmatch(r"[0-9a-f]{32}", file.md5):
        fields["file:checksum"] = MD5_MULTIHASH + file.md5
    return fields


def _s2_asset(file: ManifestFile) -> tuple[str, dict[str, Any]] | None:
    name = file.path.rsplit("/", 1)[-1]
    if name.startswith("MTD_MSIL"):
        return "product_metadata", {"type": "application/xml", "roles": ["metadata"]}
    if name == "MTD_TL.xml":
        return "granule_metadata", {"type": "application/xml", "roles": ["metadata"]}
    found = _S2_IMAGE.search(name)
    if found is None:
        return None
    band, resolution = found[1], found[2]
    key = f"{band}_{resolution}m" if resolution else band
    asset: dict[str, Any] = {"type": JP2, "roles": ["data"]}
    if band in S2_BANDS:
        common, wavelength, native = S2_BANDS[band]
        asset["gsd"] = int(resolution) if resolution else native
        asset["eo:bands"] = [{"name": band, "common_name": common, "center_wavelength": wavelength}]
    elif band == "TCI":
        asset["roles"] = ["visual"]
        asset["gsd"] = int(resolution) if resolution else 10
    else:
        asset["gsd"] = int(resolution) if resolution else 20
    return key, asset


def _s1_asset(file: ManifestFile) -> tuple[str, dict[str, Any]] | None:
    found = _S1_FILE.match(file.path)
    if found is None:
        return None
    folder, kind, swath, polarisation = found[1], found[2], found[3], found[4]
    stem = f"{swath}-{polarisation}" if swath else polarisation
    if folder == "measurement":
        asset = {"type": GEOTIFF, "roles": ["data"], "sar:polarizations": [polarisation.upper()]}
        return stem, asset
    role_key = kind or "annotation"
    return f"{role_key}-{stem}", {"type": "application/xml", "roles": ["metadata"]}


def file_assets(
    files: list[ManifestFile], product_url: str, root_folder: str
) -> dict[str, dict[str, Any]]:
    """The per-file assets of a Sentinel-1 or Sentinel-2 product."""
    assets = {}
    s2 = root_folder.startswith("S2")
    for file in files:
        found = _s2_asset(file) if s2 else _s1_asset(file)
        if found is None or found[0] in assets:
            continue
        key, asset = found
        href = node_href(product_url, root_folder, file.path)
        title = file.path.rsplit("/", 1)[-1]
        assets[key] = {"href": href, "title": title, **asset, **_file_fields(file)}
    return assets
