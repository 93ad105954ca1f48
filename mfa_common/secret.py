"""A wrapper that keeps credentials out of reprs, str(), f-strings, logs and tracebacks.

Every password, TOTP secret, one-time code, recovery code, session id, token and API key
that the SDK holds lives in a :class:`Secret`. Reading the value is explicit
(``secret.reveal()``), so an accidental ``print``, ``logging`` call, exception message or
``repr`` of a model shows ``Secret('***')`` instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any, Generic, TypeVar

T = TypeVar("T", str, bytes)

# A per-process key for fingerprints: two fingerprints can be compared inside one process
# (to tell credentials apart in logs) without the fingerprint being a reusable hash of the secret.
_FINGERPRINT_KEY = os.urandom(32)

REDACTED = "***"


class Secret(Generic[T]):
    """An opaque holder for a secret value.

    >>> s = Secret("hunter2")
    >>> s
    Secret('***')
    >>> s.reveal()
    'hunter2'
    """

    __slots__ = ("_value",)
    _value: T

    def __init__(self, value: T) -> None:
        if isinstance(value, Secret):  # pragma: no cover - defensive
            value = value.reveal()
        object.__setattr__(self, "_value", value)

    def reveal(self) -> T:
        """Return the secret value. Call this only where the value goes on the wire."""
        return self._value

    def fingerprint(self) -> str:
        """A short keyed digest, stable within this process, safe to log."""
        value = self._value
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        return hmac.new(_FINGERPRINT_KEY, raw, hashlib.sha256).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            a, b = self._value, other._value
            if type(a) is not type(b):
                return False
            return hmac.compare_digest(a, b)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> Any:
        raise TypeError("Secret values cannot be pickled")


def reveal(value: str | Secret[str]) -> str:
    """The plain value of ``value``, whether or not it is wrapped."""
    return value.reveal() if isinstance(value, Secret) else value


def wrap(value: str | Secret[str]) -> Secret[str]:
    """``value`` as a :class:`Secret` (unchanged when it already is one)."""
    return value if isinstance(value, Secret) else Secret(value)
