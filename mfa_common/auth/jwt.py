"""Reading a JWT's claims without verifying it: the client only needs ``exp`` to refresh early."""

from __future__ import annotations

import base64
import json
from typing import Any

from ..secret import Secret, reveal


def jwt_claims(token: str | Secret[str]) -> dict[str, Any] | None:
    """The claims of a compact JWT, or None when it is not one (never raises)."""
    parts = reveal(token).split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def jwt_expiry(token: str | Secret[str]) -> float | None:
    """The ``exp`` claim as Unix seconds, or None when absent or unreadable."""
    claims = jwt_claims(token)
    if claims is None:
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    if exp != exp or exp <= 0 or exp > 1e11:
        return None
    return float(exp)
