"""``openapi/openapi.json`` is the app's OpenAPI document: regenerated, compared, served."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import Archive, MakeFederation
from factories import series

from mqs.cli import main
from mqs.openapi import demo_config, document_text, openapi_document, render

COMMITTED = Path(__file__).parent.parent / "openapi" / "openapi.json"
REGENERATE = "regenerate it: .venv/bin/mqs openapi > openapi/openapi.json"


def test_committed_document_is_the_apps_current_one() -> None:
    assert COMMITTED.is_file(), f"openapi/openapi.json is missing; {REGENERATE}"
    current = document_text()
    committed = COMMITTED.read_text(encoding="utf-8")
    if committed != current:
        old, new = json.loads(committed), json.loads(current)
        added = sorted(set(new["paths"]) - set(old["paths"]))
        removed = sorted(set(old["paths"]) - set(new["paths"]))
        pytest.fail(
            "openapi/openapi.json differs from the app's OpenAPI document "
            f"(paths added {added}, removed {removed}); {REGENERATE}"
        )


def test_mqs_openapi_prints_the_same_bytes_every_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi"]) == 0
    first = capsys.readouterr().out
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out == first == document_text()
    assert first.endswith("}\n") and json.loads(first)["openapi"].startswith("3.")


def test_document_describes_the_stac_api() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    paths = document["paths"]
    for path in ("/", "/conformance", "/collections", "/collections/{collection_id}/items"):
        assert "get" in paths[path]
    assert {"get", "post"} <= set(paths["/search"])
    collection_search = {p["name"] for p in paths["/collections"]["get"]["parameters"]}
    assert {"q", "bbox", "datetime", "limit", "token"} <= collection_search
    search = {p["name"] for p in paths["/search"]["get"]["parameters"]}
    assert {"bbox", "datetime", "filter", "filter-lang", "sortby", "fields", "token"} <= search
    assert document["info"]["title"] == demo_config().server.title


def test_api_serves_the_document_of_its_own_config(make_federation: MakeFederation) -> None:
    fed = make_federation(eodc=Archive(series(1)))
    r = httpx.get(f"{fed.url}/api")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert render(r.json()) == render(openapi_document(fed.config))


def test_mqs_openapi_config_names_the_federation_described(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "federation.yaml"
    config.write_text(
        "server: {title: Example federation}\n"
        "collections: {sentinel-2-l2a: {title: L2A}}\n"
        "backends:\n"
        "  - {id: a, kind: stac, url: 'https://stac.example.org', collections: [sentinel-2-l2a]}\n",
        encoding="utf-8",
    )
    assert main(["openapi", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["info"]["title"] == "Example federation"
