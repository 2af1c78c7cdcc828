"""The ``mqs`` command: ``serve``, ``demo``, ``config check``, ``deletions``, ``openapi``."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import secrets
import sys
from pathlib import Path

from fastapi import FastAPI

from mqs.config import ConfigError, FederationConfig, Settings, load_config
from mqs.deletions.commands import add_parser as deletions_parser
from mqs.logs import configure_logging
from mqs.metrics import use_multiprocess_dir


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: the config named by ``MQS_CONFIG``."""
    from mqs.app import create_app

    settings = Settings()
    if settings.config is None:
        raise SystemExit("MQS_CONFIG is not set")
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(load_config(settings.config, settings), settings)
    _settle_garbage_collector()
    return app


def _settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off what a worker built at startup.

    Modules, schemas and the app live as long as the process, yet every collection of the
    oldest generation walked them again; a search allocates tens of thousands of short-lived
    objects (parsed backend pages), which triggers such collections. Frozen, a 100-item search
    costs ~25% less CPU and memory stays flat (benchmarks/bench_cpu.py, bench_memory.py).
    The youngest generation is collected every 7,000 allocations instead of 700: a 10-item
    search over three backends allocates some 10,000 containers, nearly all freed by reference
    counting, and each collection walks the survivors of the searches in flight (B6: gateway CPU
    per search 2.55 -> 2.3 ms; the worker's RSS over 500 pages stays flat, bench_memory.py).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 10, 10)


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
    settings = Settings()
    level, fmt = args.log_level or settings.log_level, args.log_format or settings.log_format
    os.environ["MQS_LOG_LEVEL"], os.environ["MQS_LOG_FORMAT"] = level, fmt  # for the workers
    configure_logging(level, fmt)
    if args.workers > 1:
        use_multiprocess_dir()  # one scrape of any worker adds up all of them
    uvicorn.run(
        "mqs.cli:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=level,
        log_config=None,  # the workers log through mqs.logs (structlog)
        access_log=False,  # mqs.ops writes the access lines (without query strings)
        timeout_graceful_shutdown=(
            args.shutdown_timeout
            if args.shutdown_timeout is not None
            else settings.shutdown_timeout_s
        ),
    )
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from mqs.openapi import document_text

    sys.stdout.write(document_text(args.config))
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
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the cache (default: 1)"
    )
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", choices=["json", "console"])
    serve.add_argument(
        "--shutdown-timeout",
        type=int,
        help="seconds in-flight requests get after SIGTERM (default: $MQS_SHUTDOWN_TIMEOUT_S, 30)",
    )
    demo = sub.add_parser("demo", help="run the gateway over built-in emulated archives")
    for cmd in (serve, demo):
        cmd.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
        cmd.add_argument("--port", type=int, default=8000, help="listen port (default: 8000)")
    serve.set_defaults(func=_serve)
    demo.set_defaults(func=_demo)
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a file and print the routing table")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_check)
    deletions_parser(sub)  # mqs deletions sync|list (mqs.deletions.commands)
    openapi = sub.add_parser("openapi", help="print the OpenAPI document (openapi/openapi.json)")
    openapi.add_argument("--config", type=Path, help="federation YAML (default: the demo's)")
    openapi.set_defaults(func=_openapi)
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
