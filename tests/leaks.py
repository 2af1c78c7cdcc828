"""Recording what a test module's gateway says (responses, log lines) to look for secrets in it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpx

LOGGERS = ("", "mqs", "httpx", "httpcore", "uvicorn", "adapters")


class Recorder(logging.Handler):
    """Every log record (DEBUG and up, from any thread) and every response a client read."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.logs: list[str] = []
        self.responses: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.logs.append(f"{self.format(record)} {record.__dict__!r}")

    def _on_response(self, response: httpx.Response) -> None:
        response.read()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.responses.append(f"{response.status_code}\n{headers}\n\n{response.text}")

    def client(self, base_url: str) -> httpx.Client:
        return httpx.Client(
            base_url=base_url, timeout=30, event_hooks={"response": [self._on_response]}
        )

    def leaks(self, secrets: Iterable[str]) -> list[str]:
        """Each secret found, with where (``response`` or ``log``)."""
        found = []
        for secret in secrets:
            if any(secret in text for text in self.responses):
                found.append(f"response: {secret[:12]}...")
            if any(secret in text for text in self.logs):
                found.append(f"log: {secret[:12]}...")
        return found


@contextmanager
def recording() -> Iterator[Recorder]:
    """A :class:`Recorder` on the root logger, with the gateway's loggers at DEBUG meanwhile."""
    recorder = Recorder()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(recorder)
    try:
        yield recorder
    finally:
        logging.getLogger().removeHandler(recorder)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
