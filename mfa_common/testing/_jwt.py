"""Minimal HS256 JSON Web Tokens for the fakes (stdlib only)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["JwtExpired", "JwtInvalid", "decode_jwt", "encode_jwt"]

_HEADER = {"alg": "HS256", "typ": "JWT"}


class JwtInvalid(ValueError):
    """The token is malformed, signed with another key or algorithm, or not yet/no longer valid."""


class JwtExpired(JwtInvalid):
    """The token's ``exp`` has passed."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(segment: str) -> bytes:
    try:
        raw = segment.encode("ascii")
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise JwtInvalid("malformed token segment") from exc


def _json_segment(value: Mapping[str, Any]) -> str:
    return _b64encode(json.dumps(dict(value), separators=(",", ":")).encode())


def _sign(signing_input: bytes, key: bytes) -> bytes:
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def encode_jwt(claims: Mapping[str, Any], key: bytes) -> str:
    """Serialize ``claims`` as a compact HS256 JWT signed with ``key``."""
    signing_input = f"{_json_segment(_HEADER)}.{_json_segment(claims)}"
    return f"{signing_input}.{_b64encode(_sign(signing_input.encode('ascii'), key))}"


def _load_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JwtInvalid(f"malformed token {what}") from exc
    if not isinstance(value, dict):
        raise JwtInvalid(f"token {what} is not a JSON object")
    return value


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JwtInvalid(f"claim {name!r} is not a number")
    return float(value)


def decode_jwt(token: str, key: bytes, *, now: float, leeway: float = 0.0) -> dict[str, Any]:
    """Verify an HS256 token and return its claims.

    Raises :class:`JwtInvalid` on a bad format, algorithm or signature or an ``nbf`` in the
    future, and :class:`JwtExpired` when ``now >= exp + leeway``.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JwtInvalid("token must have three non-empty segments")
    header = _load_object(parts[0], "header")
    if header.get("alg") != "HS256":
        raise JwtInvalid("unsupported token algorithm")
    signature = _b64decode(parts[2])
    expected = _sign(f"{parts[0]}.{parts[1]}".encode("ascii"), key)
    if not hmac.compare_digest(signature, expected):
        raise JwtInvalid("bad token signature")
    claims = _load_object(parts[1], "payload")
    exp = _numeric(claims, "exp")
    if exp is not None and now >= exp + leeway:
        raise JwtExpired("token expired")
    nbf = _numeric(claims, "nbf")
    if nbf is not None and now < nbf - leeway:
        raise JwtInvalid("token not yet valid")
    return claims
