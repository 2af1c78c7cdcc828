"""The ``mqs`` command: ``config check`` on good and broken files, ``demo`` serving for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mqs.cli import main
from mqs.serving import bound_socket, url_of

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.yaml"

VALID = """
collections:
  sentinel-2-l2a: {title: S2 L2A}
backends:
  - id: eodc
    kind: stac
    url: https://stac.eodc.eu/api/v1
    priority: 10
    collections: {sentinel-2-l2a: SENTINEL2_L2A}
"""


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "federation.yaml"
    path.write_text(text)
    code = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_prints_routing_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _check(tmp_path, VALID, capsys)
    assert code == 0
    assert "sentinel-2-l2a" in out and "eodc (stac, priority 10)" in out


def test_check_accepts_the_demo_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert "sentinel-2-l2a           -> eodc (stac, priority 10), cesnet" in out


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param(("priority: 10", "priority: high"), "backends[0].priority", id="bad-int"),
        pytest.param(("kind: stac", "kind: ftp"), "backends[0].kind", id="unknown-kind"),
        pytest.param(("id: eodc", "id: EODC!"), "backends[0].id", id="bad-id"),
        pytest.param(
            ("sentinel-2-l2a: SENTINEL2", "sentinel-9: SENTINEL2"),
            "backends[0].collections.sentinel-9",
            id="unknown-collection",
        ),
        pytest.param(("url: https://stac", "url: ftp://stac"), "backends[0].url", id="bad-url"),
        pytest.param(
            ("url: https://stac", "url: https://user:pw@stac"),
            "backends[0].url",
            id="credentials-in-url",
        ),
        pytest.param(
            ("priority: 10", "priority: 10\n    colour: red"),
            "backends[0].colour",
            id="unknown-key",
        ),
        pytest.param(
            ("priority: 10", "priority: 10\n    options: {search_method: PUT}"),
            "options.search_method",
            id="bad-adapter-option",
        ),
        pytest.param(
            ("collections:\n  sentinel", "server: {max_limit: 0}\ncollections:\n  sentinel"),
            "server.max_limit",
            id="bad-server",
        ),
    ],
)
def test_check_names_the_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], path: str
) -> None:
    old, new = change
    assert old in VALID
    code, out, err = _check(tmp_path, VALID.replace(old, new, 1), capsys)
    assert code == 1
    assert path in err, err
    assert out == ""


def test_check_rejects_non_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _check(tmp_path, "backends: [unclosed", capsys)
    assert code == 1 and "not valid YAML" in err


def test_check_rejects_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_duplicate_backend_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    twice = VALID + VALID.split("backends:\n", 1)[1]
    code, _, err = _check(tmp_path, twice, capsys)
    assert code == 1 and "backends[1].id" in err and "duplicate" in err


def _wait_for(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _run(args: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mqs.cli", *args, "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})})


def _free_port() -> int:
    sock = bound_socket()
    port = int(url_of(sock).rsplit(":", 1)[1])
    sock.close()
    return port


def test_demo_serves_a_federation_until_interrupted() -> None:
    port = _free_port()
    proc = _run(["demo"], port)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url + "/", proc)
        backends = httpx.get(url + "/backends").json()["backends"]
        assert {(b["id"], b["kind"]) for b in backends} == {
            ("eodc", "stac"),
            ("element84", "stac"),
            ("cesnet", "dhus"),
            ("grnet", "dhus"),
            ("cdse", "cdse-odata"),
            ("creodias", "resto"),
            ("vito", "terrascope"),
        }
        page = httpx.get(url + "/search", params={"collections": "sentinel-2-l2a", "limit": 50})
        merged = [
            f for f in page.json()["features"] if len(f["properties"]["federation:backends"]) > 1
        ]
        assert merged, "the demo archives overlap"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) in (0, -signal.SIGINT)


def test_serve_runs_workers_on_a_config(tmp_path: Path) -> None:
    config = tmp_path / "federation.yaml"
    config.write_text(VALID.replace("https://stac.eodc.eu/api/v1", "http://127.0.0.1:9"))
    port = _free_port()
    proc = _run(["serve", "--config", str(config), "--workers", "2"], port)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url + "/", proc)
        assert httpx.get(url + "/collections").json()["collections"][0]["id"] == "sentinel-2-l2a"
        down = httpx.get(url + "/search")
        assert down.status_code == 502 and down.json()["federation:backends"] == {
            "eodc": "unavailable"
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
