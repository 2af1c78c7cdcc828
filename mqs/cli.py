"""The ``mqs`` command: ``serve``, ``demo``, ``config check``."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

from fastapi import FastAPI

from mqs.config import ConfigError, FederationConfig, Settings, load_config


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: the config named by ``MQS_CONFIG``."""
    from mqs.app import create_app

    settings = Settings()
    if settings.config is None:
        raise SystemExit("MQS_CONFIG is not set")
    return create_app(load_config(settings.config, settings), settings)


def routing_table(config: FederationConfig) -> str:
    lines = []
    for cid, backends in config.routing().items():
        served = ", ".join(f"{b.id} ({b.kind}, priority {b.priority})" for b in backends)
        lines.append(f"{cid:<24} -> {served or '(no backend)'}")
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(
        f"{args.file}: OK ({len(config.backends)} backends, {len(config.collections)} collections)"
    )
    print(routing_table(config))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    path = args.config or Settings().config
    if path is None:
        print("mqs serve: give --config FILE or set MQS_CONFIG", file=sys.stderr)
        return 2
    load_config(path)  # fail fast, before any worker starts
    os.environ["MQS_CONFIG"] = str(Path(path).resolve())
    os.environ.setdefault("MQS_TOKEN_SECRET", secrets.token_urlsafe(32))
    uvicorn.run(
        "mqs.cli:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mqs.demo import run_demo

    run_demo(args.host, args.port)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mqs", description="MQS federated STAC API gateway")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway on a federation config")
    serve.add_argument("--config", type=Path, help="federation YAML (default: $MQS_CONFIG)")
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    demo = sub.add_parser("demo", help="run the gateway over built-in emulated archives")
    for cmd in (serve, demo):
        cmd.add_argument("--host", default="127.0.0.1")
        cmd.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)
    demo.set_defaults(func=_demo)
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a file and print the routing table")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_check)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # stac-fastapi warns at import about settings that create_app() sets explicitly
    logging.getLogger("stac_fastapi.types.config").setLevel(logging.ERROR)
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"mqs: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
