"""The one place that knows every adapter kind and its emulator.

Adding a backend kind: write ``adapters/<kind>/`` (query, mapping, adapter, emulator) and add
one line to each dict below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.base import AdapterFactory
from adapters.dhus.adapter import DhusAdapter
from adapters.dhus.emulator import create_emulator as dhus_emulator
from adapters.stac.adapter import StacAdapter
from adapters.stac.emulator import create_emulator as stac_emulator

ADAPTERS: dict[str, AdapterFactory] = {
    "stac": StacAdapter,
    "dhus": DhusAdapter,
}

EMULATORS: dict[str, Callable[..., Any]] = {
    "stac": stac_emulator,
    "dhus": dhus_emulator,
}
