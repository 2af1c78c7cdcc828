"""``mqs demo``: the gateway over built-in emulated archives, on loopback, no account needed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from adapters.cdse_odata.emulator import TOKEN_PATH
from adapters.registry import EMULATORS
from mqs.app import create_app
from mqs.config import FederationConfig, Settings, parse_config
from mqs.demodata import demo_deletions, generate_catalogue, write_catalogue
from mqs.serving import bound_socket, make_server, serve_all, url_of

log = logging.getLogger("mqs.demo")

# The demo's own account on its emulated CDSE (downloads need a Keycloak token, as on CDSE):
# made up at each start, put into this process's environment, never shown.
DEMO_CDSE_USER_ENV, DEMO_CDSE_PASSWORD_ENV = "MQS_DEMO_CDSE_USER", "MQS_DEMO_CDSE_PASSWORD"


def demo_config_text() -> str:
    """The demo federation (``examples/demo.yaml``, shipped inside the package)."""
    return resources.files("mqs").joinpath("data/demo.yaml").read_text(encoding="utf-8")


def start_emulators(
    raw: dict[str, Any], data_dir: Path, host: str = "127.0.0.1"
) -> list[tuple[Any, socket.socket]]:
    """An emulator per demo backend, each on a free port; fills the ports into ``raw``."""
    catalogue = generate_catalogue()
    files = write_catalogue(data_dir, catalogue)
    withdrawn = demo_deletions(catalogue)  # the DeletedProducts feeds (mqs.deletions)
    apps = []
    for backend in raw["backends"]:
        sock = bound_socket(host)
        account = _demo_account(backend, url_of(sock)) if backend["kind"] == "cdse-odata" else {}
        emulator = EMULATORS[backend["kind"]](files[backend["id"]], **account)
        for item, cause, when in withdrawn.get(backend["id"], []):
            emulator.state.deleted.add(item, cause, when)
        backend["url"] = url_of(sock) + str(backend["url"]).split(":0", 1)[-1]
        apps.append((emulator, sock))
    return apps


def _demo_account(backend: dict[str, Any], url: str) -> dict[str, Any]:
    """Gives the gateway an OAuth2 account on the emulated CDSE: its downloads go through
    ``/download`` with the gateway's token. Returns the emulator's ``users`` argument."""
    user = os.environ.setdefault(DEMO_CDSE_USER_ENV, "mqs-demo")
    password = os.environ.setdefault(DEMO_CDSE_PASSWORD_ENV, secrets.token_urlsafe(24))
    backend["auth"] = {
        "type": "oauth2",
        "token_url": url + TOKEN_PATH,
        "grant": "password",
        "client_id": "cdse-public",
        "username_env": DEMO_CDSE_USER_ENV,
        "password_env": DEMO_CDSE_PASSWORD_ENV,
    }
    return {"users": {user: password}}


def demo_federation(data_dir: Path) -> tuple[FederationConfig, list[tuple[Any, socket.socket]]]:
    raw = yaml.safe_load(demo_config_text())
    apps = start_emulators(raw, data_dir)
    return parse_config(raw, "demo.yaml"), apps


def run_demo(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the demo federation in the foreground until interrupted."""
    with tempfile.TemporaryDirectory(prefix="mqs-demo-") as tmp:
        config, apps = demo_federation(Path(tmp))
        gateway_sock = bound_socket(host, port)
        servers = [(make_server(app, sock), sock) for app, sock in apps]
        servers.append(
            (make_server(create_app(config, Settings()), gateway_sock, "info"), gateway_sock)
        )
        for backend in config.backends:
            print(f"  emulated backend {backend.id:<10} {backend.kind:<10} {backend.url}")
        print(f"MQS demo gateway on {url_of(gateway_sock)}/  (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_all(servers))
