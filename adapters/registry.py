"""The one place that knows every adapter kind and its emulator.

Adding a backend kind: write ``adapters/<kind>/`` (query, mapping, adapter, emulator) and add
one line to each dict below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.base import AdapterFactory
from adapters.cdse_odata.adapter import CdseOdataAdapter
from adapters.cdse_odata.emulator import create_emulator as cdse_odata_emulator
from adapters.dhus.adapter import DhusAdapter
from adapters.dhus.emulator import create_emulator as dhus_emulator
from adapters.resto.adapter import RestoAdapter
from adapters.resto.emulator import create_emulator as resto_emulator
from adapters.stac.adapter import StacAdapter
from adapters.stac.emulator import create_emulator as stac_emulator
from adapters.terrascope.adapter import TerrascopeAdapter
from adapters.terrascope.emulator import create_emulator as terrascope_emulator

ADAPTERS: dict[str, AdapterFactory] = {
    "stac": StacAdapter,
    "dhus": DhusAdapter,
    "resto": RestoAdapter,
    "cdse-odata": CdseOdataAdapter,
    "terrascope": TerrascopeAdapter,
}

EMULATORS: dict[str, Callable[..., Any]] = {
    "stac": stac_emulator,
    "dhus": dhus_emulator,
    "resto": resto_emulator,
    "cdse-odata": cdse_odata_emulator,
    "terrascope": terrascope_emulator,
}
