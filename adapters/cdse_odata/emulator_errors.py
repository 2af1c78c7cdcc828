"""What the emulated CDSE catalogue answers instead of a 200, shared by its entity sets."""

from __future__ import annotations

import re
from typing import Any


class Rejected(Exception):
    """An answer other than 200: status and JSON body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def int_param(params: dict[str, str], name: str, default: int, high: int) -> int:
    """FastAPI's validation of an integer query parameter in [0, high] (422 otherwise)."""
    text = params.get(name)
    if text is None:
        return default
    loc = ["query", name]
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        msg = "Input should be a valid integer, unable to parse string as an integer"
        raise Rejected(
            422, {"detail": [{"type": "int_parsing", "loc": loc, "msg": msg, "input": text}]}
        )
    value = int(text)
    if value < 0:
        error = {"type": "greater_than_equal", "loc": loc, "input": text, "ctx": {"ge": 0}}
        raise Rejected(
            422, {"detail": [error | {"msg": "Input should be greater than or equal to 0"}]}
        )
    if value > high:
        msg = f"Input should be less than or equal to {high}"
        error = {
            "type": "less_than_equal",
            "loc": loc,
            "msg": msg,
            "input": text,
            "ctx": {"le": high},
        }
        raise Rejected(422, {"detail": [error]})
    return value
