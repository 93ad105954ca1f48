"""Hostile-input-safe parsing of request bodies and query values, shared by the fakes.

A fake must never answer 5xx to bad input, nor store a value it cannot send back. Three kinds
of input did both before: a JSON string with a lone UTF-16 surrogate (``"\\ud800"``: Python
parses it, then cannot encode it as UTF-8 when the value is echoed), the non-standard constants
``NaN`` / ``Infinity`` (parsed, then refused by the JSON encoder), and numbers such as ``inf`` or
``1e400`` in query parameters that ``int(float(...))`` turns into an ``OverflowError``.

* :func:`load_json` parses a body strictly (:class:`BadJson` on anything that is not standard
  JSON, nesting too deep included). Lone surrogates are either refused or, as Go's
  ``encoding/json`` does (ShellHub), replaced by U+FFFD.
* :func:`parse_int` reads a plain decimal integer and nothing else.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

__all__ = ["BadJson", "has_lone_surrogate", "load_json", "parse_int"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


class BadJson(ValueError):
    """The body is not standard JSON (or holds a lone surrogate where those are refused)."""


def _no_constants(name: str) -> Any:
    raise BadJson(f"{name} is not JSON")


def has_lone_surrogate(value: Any) -> bool:
    """True when any string (or object key) in a parsed JSON value is not valid Unicode text."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    return value


def load_json(raw: bytes | str, *, lone_surrogates: Literal["reject", "replace"] = "reject") -> Any:
    """The parsed JSON value of ``raw``; :class:`BadJson` when it is not standard JSON.

    ``lone_surrogates="reject"`` refuses a string holding an unpaired surrogate escape;
    ``"replace"`` turns each into U+FFFD (what a Go server's decoder does).
    """
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except BadJson:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadJson("the body is not valid JSON") from exc
    if has_lone_surrogate(value):
        if lone_surrogates == "reject":
            raise BadJson("the body holds a lone UTF-16 surrogate, which is not text")
        value = _replace_surrogates(value)
    return value


def parse_int(text: str | None) -> int | None:
    """``text`` as an integer when it is a plain decimal one (at most 18 digits), else None.

    ``"inf"``, ``"1e400"``, ``"1.5"``, ``"nan"`` and the empty string are all None.
    """
    if text is None:
        return None
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        return None
    return int(text)
