"""Wire helpers the MetalCloud fake's handler modules share: NestJS error bodies, the failure
raised by a handler, timestamps, ``If-Match`` checks and body validation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request

__all__ = ["Fail", "check_if_match", "iso", "nest_error_body", "parse_iso", "validate_fields"]

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def nest_error_body(status: int, message: str | list[str]) -> dict[str, Any]:
    """The NestJS default exception body."""
    return {"statusCode": status, "message": message, "error": _REASONS.get(status, "Error")}


class Fail(Exception):
    """Raised by a handler: answered as ``status`` with a NestJS body."""

    def __init__(self, status: int, message: str | list[str]) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


def iso(ts: float) -> str:
    """The server's timestamp form: ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_iso(text: str) -> float | None:
    """Unix seconds of an ISO 8601 timestamp (naive means UTC), None when it is not one."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def check_if_match(request: Request, revision: int, *, compare: bool = True, required: bool = True) -> None:
    """428 when ``If-Match`` is missing (and ``required``), 412 when it names another revision.

    Accepted forms: ``7``, ``"7"``, ``W/"7"`` and ``*``; anything else is a mismatch.
    """
    value = request.headers.get("if-match")
    if value is None or not value.strip():
        if required:
            raise Fail(428, "Precondition required: send If-Match with the current revision")
        return
    if not compare:
        return
    text = value.strip()
    if text == "*":
        return
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"').strip()
    if not text.isdigit() or int(text) != revision:
        raise Fail(412, "Precondition failed: the revision does not match")


# JSON types of request fields, as class-validator names them in its messages.
_CHECKS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "string": (str, "must be a string"),
    "boolean": (bool, "must be a boolean value"),
    "number": ((int, float), "must be a number conforming to the specified constraints"),
    "object": (dict, "must be an object"),
    "array": (list, "must be an array"),
}


def _encodable(value: Any) -> bool:
    """False for text holding a lone surrogate (JSON allows it, UTF-8 cannot carry it): stored,
    it would break every later answer that shows it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_encodable(v) for v in value)
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    return True


def validate_fields(
    body: Any,
    fields: Mapping[str, str],
    *,
    required: tuple[str, ...] = (),
    enums: Mapping[str, tuple[str, ...]] | None = None,
    items: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``body`` checked as a DTO (class-validator style): each known field has the JSON type
    ``fields`` names, required ones are present; unknown fields are refused as the server's
    whitelist does. Raises a 400 listing every problem; returns the body."""
    if not isinstance(body, dict):
        raise Fail(400, ["the body must be a JSON object"])
    problems: list[str] = []
    for name in required:
        if body.get(name) is None:
            problems.append(f"{name} should not be empty")
    for name, value in body.items():
        if not _encodable(name):
            problems.append("a property name is not valid UTF-8 text")
            continue
        if not _encodable(value):
            problems.append(f"{name} must be valid UTF-8 text")
            continue
        kind = fields.get(name)
        if kind is None:
            problems.append(f"property {name} should not exist")
            continue
        if value is None:
            continue
        expected, message = _CHECKS[kind]
        ok = isinstance(value, expected) and not (kind == "number" and isinstance(value, bool))
        if ok and kind == "number" and not math.isfinite(value):
            ok = False
        if not ok:
            problems.append(f"{name} {message}")
            continue
        allowed = (enums or {}).get(name)
        if allowed is not None and value not in allowed:
            problems.append(f"{name} must be one of the following values: {', '.join(allowed)}")
        item_kind = (items or {}).get(name)
        if item_kind is not None and isinstance(value, list):
            item_type, _ = _CHECKS[item_kind]
            if not all(isinstance(v, item_type) and not isinstance(v, bool) for v in value):
                problems.append(f"each value in {name} {_CHECKS[item_kind][1]}")
    if problems:
        raise Fail(400, problems)
    return body
