"""The gateway's OpenAPI document, as committed in ``openapi/openapi.json``.

``mqs openapi [--config FILE] > openapi/openapi.json`` writes it: the app built on a config
(default: the demo federation, whose server title and description it shows), serialised with
sorted keys so the same app always gives the same bytes. A test compares it with the app.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from mqs.config import FederationConfig, Settings, load_config, parse_config


def demo_config() -> FederationConfig:
    """The demo federation's config as shipped (backend ports unset: nothing is started)."""
    from mqs.demo import demo_config_text

    return parse_config(yaml.safe_load(demo_config_text()), "demo.yaml")


def openapi_document(config: FederationConfig) -> dict[str, Any]:
    """The OpenAPI document the app over ``config`` serves at ``/api``."""
    from mqs.app import create_app

    logging.getLogger("stac_fastapi.types.config").setLevel(logging.ERROR)
    document: dict[str, Any] = create_app(config, Settings()).openapi()
    return document


def render(document: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def document_text(config_path: Path | None = None) -> str:
    config = load_config(config_path) if config_path else demo_config()
    return render(openapi_document(config))
