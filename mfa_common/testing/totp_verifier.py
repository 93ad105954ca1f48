"""Server-side TOTP for the fakes: RFC 4226 / RFC 6238 codes and replay-rejecting verification.

Self-contained (stdlib only) so the fakes check codes independently of the SDK's own TOTP code.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import random
import secrets
import string
import threading
from collections.abc import Callable
from typing import Final, Literal

__all__ = [
    "ReplayRejectingVerifier",
    "Verdict",
    "decode_base32_secret",
    "generate_base32_secret",
    "generate_recovery_codes",
    "hotp",
    "totp",
]

Verdict = Literal["ok", "wrong", "replayed"]
Algorithm = Literal["SHA1", "SHA256", "SHA512"]

_DIGESTS: Final[dict[str, str]] = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
_MAX_WINDOW: Final = 10
_DEFAULT_RECOVERY_ALPHABET: Final = string.ascii_lowercase + string.digits


def decode_base32_secret(secret_base32: str) -> bytes:
    """Decode a base32 secret, tolerating case, spaces, dashes and missing padding."""
    cleaned = "".join(secret_base32.split()).replace("-", "").upper().rstrip("=")
    if not cleaned:
        raise ValueError("empty TOTP secret")
    cleaned += "=" * (-len(cleaned) % 8)
    try:
        return base64.b32decode(cleaned)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid base32 TOTP secret") from exc


def _digest(algorithm: str) -> str:
    try:
        return _DIGESTS[algorithm.upper().replace("-", "")]
    except KeyError:
        raise ValueError(f"unsupported algorithm {algorithm!r}") from None


def hotp(key: bytes, counter: int, *, digits: int = 6, algorithm: str = "SHA1") -> str:
    """RFC 4226 HOTP value of ``counter`` (dynamic truncation), zero-padded to ``digits``."""
    if not 1 <= digits <= 10:
        raise ValueError("digits must be between 1 and 10")
    if counter < 0:
        raise ValueError("counter must be >= 0")
    mac = hmac.new(key, counter.to_bytes(8, "big"), _digest(algorithm)).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(
    secret_base32: str,
    for_time: float,
    *,
    digits: int = 6,
    period: int = 30,
    algorithm: str = "SHA1",
) -> str:
    """RFC 6238 TOTP code of a base32 secret at Unix time ``for_time``."""
    if period <= 0:
        raise ValueError("period must be > 0")
    step = math.floor(for_time / period)
    return hotp(decode_base32_secret(secret_base32), step, digits=digits, algorithm=algorithm)


class ReplayRejectingVerifier:
    """Verifies TOTP codes per user and accepts at most one code per time step.

    Follows devise-two-factor: a code is accepted only if the step it matches is later than the
    last step accepted for that user, so a second login within the same step is ``"replayed"``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_step: dict[str, int] = {}

    def verify(
        self,
        user_key: str,
        code: str,
        *,
        secret_base32: str,
        now: float,
        window: int = 1,
        digits: int = 6,
        period: int = 30,
        algorithm: str = "SHA1",
    ) -> Verdict:
        """Check ``code`` for ``user_key`` at time ``now`` within ``±window`` steps."""
        if not 0 <= window <= _MAX_WINDOW:
            raise ValueError(f"window must be between 0 and {_MAX_WINDOW}")
        if period <= 0:
            raise ValueError("period must be > 0")
        candidate = "".join(code.split())
        if len(candidate) != digits or not candidate.isascii() or not candidate.isdigit():
            return "wrong"
        key = decode_base32_secret(secret_base32)
        current = math.floor(now / period)
        matched = [
            step
            for step in range(max(0, current - window), current + window + 1)
            if hmac.compare_digest(
                hotp(key, step, digits=digits, algorithm=algorithm).encode(), candidate.encode()
            )
        ]
        if not matched:
            return "wrong"
        with self._lock:
            last = self._last_step.get(user_key)
            fresh = [step for step in matched if last is None or step > last]
            if not fresh:
                return "replayed"
            self._last_step[user_key] = fresh[0]
            return "ok"

    def last_step(self, user_key: str) -> int | None:
        """The last time step accepted for ``user_key``, if any."""
        with self._lock:
            return self._last_step.get(user_key)

    def forget(self, user_key: str) -> None:
        """Drop the replay state of one user (e.g. when their MFA is reset)."""
        with self._lock:
            self._last_step.pop(user_key, None)

    def clear(self) -> None:
        """Drop all replay state."""
        with self._lock:
            self._last_step.clear()


def generate_base32_secret(nbytes: int = 20, rng: random.Random | None = None) -> str:
    """A random secret of ``nbytes`` bytes as unpadded upper-case base32.

    Uses :mod:`secrets` unless a seeded ``rng`` is given (for reproducible fakes).
    """
    if nbytes < 1:
        raise ValueError("nbytes must be >= 1")
    raw = secrets.token_bytes(nbytes) if rng is None else rng.randbytes(nbytes)
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def generate_recovery_codes(
    n: int = 10,
    alphabet: str = _DEFAULT_RECOVERY_ALPHABET,
    length: int = 10,
    rng: random.Random | None = None,
) -> list[str]:
    """``n`` distinct random codes of ``length`` characters drawn from ``alphabet``."""
    if n < 0 or length < 1:
        raise ValueError("n must be >= 0 and length >= 1")
    symbols = "".join(dict.fromkeys(alphabet))
    if len(symbols) < 2:
        raise ValueError("alphabet needs at least two distinct characters")
    if len(symbols) ** length < 2 * n:
        raise ValueError("alphabet and length allow too few distinct codes")
    choose: Callable[[str], str] = secrets.choice if rng is None else rng.choice
    codes: dict[str, None] = {}
    attempts = 0
    max_attempts = 100 * n + 100
    while len(codes) < n:
        attempts += 1
        if attempts > max_attempts:
            raise RuntimeError("could not draw enough distinct recovery codes")
        codes["".join(choose(symbols) for _ in range(length))] = None
    return list(codes)
