"""A 1 GiB product streamed through the gateway leaves the gateway's memory flat.

The DHuS emulator (Basic auth, a lazily generated 1 GiB product) and the gateway run in
processes of their own (``tests/serve_download.py``); this test downloads through the gateway
and samples the gateway process's resident memory (``/proc/<pid>/status``) meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mqs.serving import bound_socket

SCRIPT = Path(__file__).parent / "serve_download.py"
GIB = 1024**3
HEADROOM = 64 * 1024**2  # the gateway may grow by less than this while streaming 1 GiB
ENV = {"MQS_TEST_DHUS_USER": "mqs-robot", "MQS_TEST_DHUS_PASSWORD": "Pa55-for-memory-test"}

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **ENV, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE, text=True, env=env
    )


def _url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://"), "server did not start"
    return url


def _free_port() -> int:
    sock = bound_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def gateway() -> Iterator[tuple[int, str]]:
    """(gateway pid, gateway URL) over an emulator with a 1 GiB product."""
    started: list[subprocess.Popen[str]] = []
    try:
        port = _free_port()  # both processes start at once: the gateway knows where to look
        started.append(_start("emulator", str(port), str(GIB)))
        started.append(process := _start("gateway", "0", f"http://127.0.0.1:{port}"))
        _url(started[0])
        url = _url(process)
        _wait_ready(url)
        yield process.pid, url
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def _wait_ready(url: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(f"{url}/_mgmt/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        threading.Event().wait(0.05)
    raise AssertionError("gateway did not become ready")


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def test_streaming_a_gibibyte_keeps_the_gateway_memory_flat(gateway: tuple[int, str]) -> None:
    pid, url = gateway
    with httpx.Client(base_url=url, timeout=30) as client:
        item = client.get("/collections/sentinel-2-l2a/items").json()["features"][0]
        href = item["assets"]["product"]["href"]
        assert href.startswith(f"{url}/download/")
        warm = client.get(href, headers={"Range": "bytes=0-1048575"})  # every code path once
        assert warm.status_code == 206 and len(warm.content) == 1024**2
        baseline = _kib(pid, "VmRSS")
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.02):
                peak = max(peak, _kib(pid, "VmRSS"))

        sampler = threading.Thread(target=sample)
        sampler.start()
        received = 0
        try:
            with client.stream("GET", href) as response:
                assert response.status_code == 200
                assert response.headers["content-length"] == str(GIB)
                for chunk in response.iter_raw(1024**2):
                    received += len(chunk)
        finally:
            done.set()
            sampler.join()
    peak = max(peak, _kib(pid, "VmRSS"))
    assert received == GIB
    assert peak - baseline < HEADROOM, f"gateway grew by {(peak - baseline) / 2**20:.0f} MiB"
    assert _kib(pid, "VmHWM") - baseline < HEADROOM
