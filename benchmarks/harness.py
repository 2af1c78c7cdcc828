"""Shared parts of the benchmarks: backends and gateway in their own processes, a load client.

- :func:`backends`: emulated backends (the real emulators, demo catalogue data) with a fixed
  response latency, in a separate process (``benchmarks/backends.py``).
- :func:`gateway`: ``mqs serve --workers N`` on a generated federation config, in its own
  process(es); yields its URL and the pids of the worker processes.
- :func:`run_load`: ``concurrency`` clients, each with one keep-alive HTTP/1.1 connection,
  sending requests back to back for a number of requests or seconds; latencies, errors and the
  client's own CPU time (its overhead). The client is h11 over asyncio streams: much lighter
  than a full HTTP client, so that a 2-core machine measures the server, not the client.
- :func:`cpu_s`, :func:`rss_mib`, :func:`peak_rss_mib`: a process's CPU and memory from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11
import httpx
import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mqs.demodata import DEMO_ARCHIVES, generate_catalogue, write_catalogue  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLLECTIONS = ("sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a")
# Demo archives whose STAC items are named by product (element84 uses its own ids).
PRODUCT_NAMED = [a.id for a in DEMO_ARCHIVES if a.id_style == "product"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc --------------------------------------------------------------------------------------
def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mib(pid: int) -> float:
    return _status(pid, "VmRSS")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM) so far."""
    return _status(pid, "VmHWM")


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` except multiprocessing's helpers (resource tracker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in cmdline and b"semaphore_tracker" not in cmdline:
                found.append(int(child))
    return found


def machine() -> dict[str, Any]:
    """What the figures depend on: load average (other work on the machine), cores, Python."""
    import importlib.util

    speed = {m: importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools")}
    return {
        "loadavg": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "installed": speed,
    }


# --- data and processes ------------------------------------------------------------------------
def catalogue_files(directory: Path, years: int = 0) -> dict[str, Path]:
    """The demo catalogue (Sept-Nov 2021; ``years`` more before it), a file per archive."""
    start = date(2021 - years, 9, 1) if years else date(2021, 9, 1)
    return write_catalogue(directory, generate_catalogue(start=start))


@dataclass
class Backend:
    """One emulated backend: its kind, the catalogue file it serves, its fixed latency."""

    id: str
    items: Path
    kind: str = "stac"
    latency_s: float = 0.0
    max_page_size: int = 100
    priority: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    emulator: dict[str, Any] = field(default_factory=dict)
    collections: Any = None
    replay: bool = True  # identical requests get the emulator's first answer again
    auth: dict[str, Any] | None = None  # the backend's `auth:` config


def stac_backends(
    files: dict[str, Path], latencies: list[float], page_size: int = 100
) -> list[Backend]:
    """STAC backends serving the demo archives' catalogues in turn (overlapping products)."""
    return [
        Backend(
            id=f"b{i}-{PRODUCT_NAMED[i % len(PRODUCT_NAMED)]}",
            items=files[PRODUCT_NAMED[i % len(PRODUCT_NAMED)]],
            latency_s=latency,
            max_page_size=page_size,
            priority=10 - i,
            emulator={"max_page_size": page_size},
            options={"max_page_size": page_size},
        )
        for i, latency in enumerate(latencies)
    ]


@contextlib.contextmanager
def _process(args: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(args, text=True, start_new_session=True, **kwargs)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def backends(specs: list[Backend], processes: int = 1) -> Iterator[dict[str, str]]:
    """Serve ``specs`` from ``processes`` separate processes (backends dealt out in turn);
    yields backend id -> URL."""
    groups = [specs[i::processes] for i in range(processes) if specs[i::processes]]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        for n, group in enumerate(groups):
            path = Path(tmp) / f"backends-{n}.json"
            path.write_text(json.dumps([_spec(b) for b in group]))
            script = str(Path(__file__).resolve().parent / "backends.py")
            args = [sys.executable, script, str(path)]
            proc = stack.enter_context(_process(args, stdout=subprocess.PIPE))
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("a backends process did not start")
            urls.update(json.loads(line))
        for url in urls.values():
            _wait_listening(url)
        yield urls


def _wait_listening(url: str, timeout_s: float = 30.0) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _spec(b: Backend) -> dict[str, Any]:
    return {
        "id": b.id,
        "kind": b.kind,
        "items": str(b.items),
        "latency_s": b.latency_s,
        "emulator": b.emulator,
        "replay": b.replay,
    }


def federation_yaml(
    specs: list[Backend], urls: dict[str, str], cache: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A federation config over the served backends (answers uncached unless ``cache``)."""
    return {
        "server": {"max_limit": 1000, "breaker": {"failures": 0}},
        "cache": cache or {"search_ttl_s": 0, "item_ttl_s": 0},
        "collections": {cid: {"title": cid} for cid in COLLECTIONS},
        "backends": [
            {
                "id": b.id,
                "kind": b.kind,
                "url": urls[b.id],
                "priority": b.priority,
                "collections": b.collections or list(COLLECTIONS),
                "options": b.options,
                **({"auth": b.auth} if b.auth else {}),
            }
            for b in specs
        ],
    }


@dataclass
class Gateway:
    url: str
    workers: list[int]  # pids of the processes answering requests

    def cpu_s(self) -> float:
        return sum(cpu_s(pid) for pid in self.workers)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def gateway(
    config: dict[str, Any], workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[Gateway]:
    """``mqs serve --workers N`` on ``config`` in its own process(es), ``env`` added."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "federation.yaml"
        path.write_text(yaml.safe_dump(config))
        port = _free_port()
        env = os.environ | {"MQS_TOKEN_SECRET": "benchmark-secret"} | (env or {})
        mqs = str(Path(sys.executable).parent / "mqs")
        args = [mqs, "serve", "--config", str(path), "--port", str(port)]
        args += ["--workers", str(workers), "--log-level", "warning"]
        with _served(args, env, port, workers) as served:
            yield served


@contextlib.contextmanager
def baseline(body: Path, workers: int = 1) -> Iterator[Gateway]:
    """The minimal stac-fastapi app of ``baseline_app.py`` answering ``body`` to searches."""
    port = _free_port()
    args = [sys.executable, "-m", "uvicorn", "--factory", "baseline_app:create"]
    args += ["--app-dir", str(Path(__file__).resolve().parent), "--port", str(port)]
    args += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    with _served(args, os.environ | {"BASELINE_BODY": str(body)}, port, workers) as served:
        yield served


@contextlib.contextmanager
def _served(args: list[str], env: dict[str, str], port: int, workers: int) -> Iterator[Gateway]:
    with _process(args, env=env) as proc:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        pids = [proc.pid] if workers == 1 else _wait_children(proc.pid, workers)
        yield Gateway(url, pids)


def _wait_ready(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited ({proc.returncode})")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_mgmt/ping", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("the gateway did not start")


def _wait_children(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = children(pid)
        if len(found) >= count:
            # workers answer pings once each has started; give the last one a moment
            time.sleep(1.0)
            return children(pid)
        time.sleep(0.1)
    raise RuntimeError("the gateway's workers did not start")


# --- load client --------------------------------------------------------------------------------
@dataclass
class Load:
    latencies_s: list[float]
    errors: int
    wall_s: float
    client_cpu_s: float
    statuses: dict[int, int]

    @property
    def count(self) -> int:
        return len(self.latencies_s)

    @property
    def rps(self) -> float:
        return self.count / self.wall_s if self.wall_s else 0.0

    def pct(self, q: float) -> float:
        """The ``q`` quantile of the latencies, in milliseconds."""
        ordered = sorted(self.latencies_s)
        if not ordered:
            return float("nan")
        if q == 0.5:
            return statistics.median(ordered) * 1000
        return ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.pct(0.5), 2),
            "p95_ms": round(self.pct(0.95), 2),
            "p99_ms": round(self.pct(0.99), 2),
            "client_cpu_us_per_request": round(self.client_cpu_s / max(self.count, 1) * 1e6, 1),
        }


def search_request(
    url: str, params: dict[str, Any], method: str = "GET", body: bytes = b""
) -> h11.Request:
    """A ``/search`` request (GET query string or POST JSON body)."""
    parts = urlsplit(url)
    headers = [("Host", parts.netloc), ("Accept-Encoding", "identity")]
    if method == "GET":
        target = f"{parts.path}/search?{urlencode(params)}"
        return h11.Request(method="GET", target=target, headers=headers)
    headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return h11.Request(method="POST", target=f"{parts.path}/search", headers=headers)


class _Connection:
    """One keep-alive HTTP/1.1 connection of the load client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(our_role=h11.CLIENT)

    @classmethod
    async def open(cls, url: str) -> _Connection:
        parts = urlsplit(url)
        return cls(*await asyncio.open_connection(parts.hostname, parts.port))

    async def exchange(self, request: h11.Request, body: bytes) -> int:
        """Send one request, read its whole answer; its status."""
        conn = self.conn
        data = conn.send(request) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        self.writer.write(data + (conn.send(h11.EndOfMessage()) or b""))
        status = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self.reader.read(262144))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed")
        conn.start_next_cycle()
        return status

    def close(self) -> None:
        self.writer.close()


async def _client(
    urls: list[str],
    requests: list[list[tuple[h11.Request, bytes]]],
    stop: Any,
    load: Load,
    index: int,
) -> None:
    """One client: each of its steps sends one request to every URL at once (usually one)."""
    conns = [await _Connection.open(url) for url in urls]
    try:
        n = index
        while not stop():
            step = requests[n % len(requests)]
            n += 1
            started = time.perf_counter()
            statuses = await asyncio.gather(
                *(c.exchange(request, body) for c, (request, body) in zip(conns, step, strict=True))
            )
            load.latencies_s.append(time.perf_counter() - started)
            status = max(statuses)
            load.statuses[status] = load.statuses.get(status, 0) + 1
            if any(code != 200 for code in statuses):
                load.errors += 1
    finally:
        for c in conns:
            c.close()


async def _load(
    urls: list[str],
    requests: list[list[tuple[h11.Request, bytes]]],
    concurrency: int,
    count: int | None,
    seconds: float | None,
) -> Load:
    load = Load([], 0, 0.0, 0.0, {})
    started = time.perf_counter()

    issued = 0

    def stop() -> bool:
        nonlocal issued
        if count is not None:
            issued += 1
            return issued > count
        return time.perf_counter() - started >= (seconds or 0)

    cpu = time.process_time()
    results = await asyncio.gather(
        *(_client(urls, requests, stop, load, i) for i in range(concurrency)),
        return_exceptions=True,
    )
    load.wall_s = time.perf_counter() - started
    load.client_cpu_s = time.process_time() - cpu
    load.errors += sum(1 for r in results if isinstance(r, BaseException))
    return load


def run_load(url: str, searches: list[dict[str, Any]], **options: Any) -> Load:
    """``concurrency`` keep-alive clients sending ``searches`` in turn until ``count`` requests
    were answered or ``seconds`` passed (the options of :func:`run_fanout_load`)."""
    return run_fanout_load([url], searches, **options)


def run_fanout_load(
    urls: list[str],
    searches: list[dict[str, Any]],
    concurrency: int = 1,
    count: int | None = None,
    seconds: float | None = None,
    method: str = "GET",
) -> Load:
    """Like :func:`run_load`, each search sent to every URL at once (over one connection per
    URL and client); its latency is the slowest answer's. Against the backends themselves, it
    measures what a perfect gateway could do."""
    requests = []
    for params in searches:
        body = orjson.dumps(params) if method == "POST" else b""
        requests.append([(search_request(url, params, method, body), body) for url in urls])
    load: Load = _event_loop_runner()(_load(urls, requests, concurrency, count, seconds))
    return load


def _event_loop_runner() -> Any:
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def follow_pages(url: str, params: dict[str, Any], pages: int) -> list[float]:
    """GET ``/search`` and its ``next`` links; the latency of each page (seconds)."""
    latencies: list[float] = []
    with httpx.Client(timeout=60) as client:
        next_url: str | None = f"{url}/search?{urlencode(params)}"
        while next_url and len(latencies) < pages:
            started = time.perf_counter()
            answer = client.get(next_url)
            latencies.append(time.perf_counter() - started)
            answer.raise_for_status()
            links = answer.json()["links"]
            next_url = next((link["href"] for link in links if link["rel"] == "next"), None)
    return latencies


# --- results ------------------------------------------------------------------------------------
def write_results(name: str, results: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>-<UTC timestamp>.json`` and ``<name>-latest.json``."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {"benchmark": name, "at": stamp, "machine": machine(), "results": results}
    text = json.dumps(document, indent=2)
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    return path


def verdict(value: float, target: float, at_most: bool = True) -> str:
    met = value <= target if at_most else value >= target
    return f"{'met' if met else 'NOT met'} (target {'<=' if at_most else '>='} {target:g})"
