"""RFC 6238 TOTP for clients, built on pyotp but tolerant of what real servers issue.

pyotp 2.12 refuses secrets under 112 bits, periods over 120 s, spaces and dashes in secrets,
and keeps the base32 secret in a plain attribute. Servers hand out 80-bit secrets and odd
periods anyway, and a client cannot refuse them, so :class:`Totp` decodes the key itself,
computes the step itself and only borrows pyotp's HOTP truncation.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math
import re
import threading
import unicodedata
import warnings
from enum import Enum
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import InvalidCodeError, InvalidInputError, InvalidOtpauthUriError, InvalidSecretError
from .secret import Secret, reveal

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyotp

__all__ = [
    "Algorithm",
    "Totp",
    "WeakSecretWarning",
    "normalize_base32",
    "validate_code_format",
]

_MAX_SECRET_INPUT = 1024
_MAX_CODE_INPUT = 64
_STRONG_KEY_BYTES = 14
_PYOTP_MAX_INTERVAL = 120
_MAX_STEP = 2**64 - 1
_BASE32_RE = re.compile(r"[A-Z2-7]+")
_INVALID_BASE32_REMAINDERS = frozenset({1, 3, 6})


class WeakSecretWarning(UserWarning):
    """The TOTP key is shorter than 112 bits; it still works, but ask the server for a new one."""


_warned_weak: set[str] = set()
_warned_lock = threading.Lock()


class Algorithm(str, Enum):
    """The HMAC hash of a TOTP key. ``Algorithm("sha256")`` works: parsing ignores case."""

    SHA1 = "SHA1"
    SHA256 = "SHA256"
    SHA512 = "SHA512"

    @classmethod
    def _missing_(cls, value: object) -> Algorithm | None:
        if isinstance(value, str):
            wanted = value.strip().upper().replace("-", "")
            for member in cls:
                if member.value == wanted:
                    return member
        return None

    @property
    def hash_factory(self) -> Callable[..., Any]:
        """The ``hashlib`` constructor for this algorithm."""
        return _HASHES[self]

    def __str__(self) -> str:
        return self.value


_HASHES: dict[Algorithm, Callable[..., Any]] = {
    Algorithm.SHA1: hashlib.sha1,
    Algorithm.SHA256: hashlib.sha256,
    Algorithm.SHA512: hashlib.sha512,
}


def normalize_base32(secret: str) -> str:
    """Canonical upper-case, unpadded base32 of a secret as users and servers write it.

    Accepts spaces, dashes, lower case, full-width characters and missing or present
    padding. Raises :class:`InvalidSecretError` (never quoting the secret) for anything that
    is not a complete base32 string.
    """
    if not isinstance(secret, str):
        raise InvalidSecretError("a TOTP secret must be a string")
    if len(secret) > _MAX_SECRET_INPUT:
        raise InvalidSecretError(f"a TOTP secret longer than {_MAX_SECRET_INPUT} characters")
    text = unicodedata.normalize("NFKC", secret)
    text = "".join(text.split()).replace("-", "").upper().rstrip("=")
    if not text:
        raise InvalidSecretError("the TOTP secret is empty")
    if not _BASE32_RE.fullmatch(text):
        raise InvalidSecretError("the TOTP secret contains characters outside base32 (A-Z, 2-7)")
    if len(text) % 8 in _INVALID_BASE32_REMAINDERS:
        raise InvalidSecretError(
            f"the TOTP secret has {len(text)} base32 characters, which is not a whole number "
            "of bytes (truncated or mistyped)"
        )
    return text


def _decode_base32(normalized: str) -> bytes:
    padded = normalized + "=" * (-len(normalized) % 8)
    try:
        return base64.b32decode(padded)
    except ValueError:
        raise InvalidSecretError("the TOTP secret is not valid base32") from None


def validate_code_format(code: str, *, digits: int) -> str:
    """The code as exactly ``digits`` ASCII digits, or :class:`InvalidCodeError`.

    NFKC turns full-width digits into ASCII and spaces (``"123 456"``) are dropped, so what
    a user types is accepted; anything else is refused before it costs a login attempt.
    """
    if not isinstance(code, str):
        raise InvalidCodeError("a one-time code must be a string")
    if len(code) > _MAX_CODE_INPUT:
        raise InvalidCodeError(f"a one-time code must be {digits} digits")
    text = "".join(unicodedata.normalize("NFKC", code).split())
    if len(text) != digits or not (text.isascii() and text.isdigit()):
        raise InvalidCodeError(f"a one-time code must be {digits} digits")
    return text


@functools.cache
def _keyed_totp_class() -> Callable[..., pyotp.TOTP]:
    """The pyotp subclass the codes come from, built with the first ``Totp`` (pyotp and its
    contrib modules load then, not with an import of the SDK)."""
    import pyotp

    class _KeyedTOTP(pyotp.TOTP):
        """pyotp's TOTP with a key we decoded once, so short keys work and nothing is re-decoded.

        ``secret`` is stored wrapped so ``vars()`` of this object shows no credential.
        """

        def __init__(
            self,
            key: Secret[bytes],
            base32: str,
            *,
            digits: int,
            digest: Callable[..., Any],
            interval: int,
        ) -> None:
            self._key = key
            super().__init__(s=base32, digits=digits, digest=digest, interval=interval)

        @property
        def secret(self) -> str:
            return self._b32.reveal()

        @secret.setter
        def secret(self, value: str) -> None:
            self._b32 = Secret(value)

        def byte_secret(self) -> bytes:
            return self._key.reveal()

        def __reduce_ex__(self, protocol: object) -> NoReturn:
            raise TypeError("TOTP objects hold a secret and cannot be pickled")

    return _KeyedTOTP


def _check_int(name: str, value: object, low: int, high: int | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(f"{name} must be an integer")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidInputError(f"{name} must be {bound}, got {value}")
    return value


class Totp:
    """A TOTP generator for one secret; immutable, unpicklable, and silent about the key.

    ``fingerprint`` identifies the key within this process (it keys the replay registry and is
    safe to log). Equality compares the key and the parameters that change the codes (digits,
    algorithm, period), not the labels. A key shorter than 14 bytes (112 bits) is accepted with a
    :class:`WeakSecretWarning`.

    Args:
        secret: The base32 secret (spaces, dashes and lower case allowed; short secrets too).
        digits: Code length, 6 to 8.
        algorithm: ``SHA1``, ``SHA256`` or ``SHA512``.
        period: Seconds per step.
        issuer: The issuer label of an ``otpauth://`` URI.
        account: The account label of an ``otpauth://`` URI.

    Raises:
        InvalidSecretError: The secret is not base32.
        InvalidInputError: A parameter out of range.
    """

    __slots__ = (
        "_key",
        "_otp",
        "_secret",
        "account",
        "algorithm",
        "digits",
        "fingerprint",
        "issuer",
        "period",
        "weak",
    )

    digits: int
    algorithm: Algorithm
    period: int
    issuer: str | None
    account: str | None
    weak: bool
    fingerprint: str
    _secret: Secret[str]
    _key: Secret[bytes]
    _otp: pyotp.TOTP

    def __init__(
        self,
        secret: str | Secret[str],
        *,
        digits: int = 6,
        algorithm: Algorithm | str = "SHA1",
        period: int = 30,
        issuer: str | None = None,
        account: str | None = None,
    ) -> None:
        _check_int("digits", digits, 6, 8)
        _check_int("period", period, 1, None)
        try:
            algo = Algorithm(algorithm)
        except ValueError:
            raise InvalidInputError("algorithm must be SHA1, SHA256 or SHA512") from None
        normalized = normalize_base32(reveal(secret))
        key = Secret(_decode_base32(normalized))
        otp = _keyed_totp_class()(
            key,
            normalized,
            digits=digits,
            digest=algo.hash_factory,
            interval=min(period, _PYOTP_MAX_INTERVAL),
        )
        fingerprint = key.fingerprint()
        weak = len(key) < _STRONG_KEY_BYTES
        setter = object.__setattr__
        setter(self, "digits", digits)
        setter(self, "algorithm", algo)
        setter(self, "period", period)
        setter(self, "issuer", issuer)
        setter(self, "account", account)
        setter(self, "weak", weak)
        setter(self, "fingerprint", fingerprint)
        setter(self, "_secret", Secret(normalized))
        setter(self, "_key", key)
        setter(self, "_otp", otp)
        if weak:
            _warn_weak(fingerprint, len(key) * 8)

    @classmethod
    def from_uri(cls, uri: str | Secret[str]) -> Totp:
        """Build from an ``otpauth://totp/...`` provisioning URI (as in a QR code).

        Args:
            uri: The URI.

        Raises:
            InvalidOtpauthUriError: Not an ``otpauth://totp`` URI.
        """
        from .otpauth import parse_otpauth_uri

        parsed = parse_otpauth_uri(uri)
        if parsed.type != "totp":
            raise InvalidOtpauthUriError(f"expected an otpauth://totp URI, got {parsed.type}")
        return cls(
            parsed.secret,
            digits=parsed.digits,
            algorithm=parsed.algorithm,
            period=parsed.period,
            issuer=parsed.issuer,
            account=parsed.account or None,
        )

    @property
    def secret(self) -> Secret[str]:
        """The normalized base32 secret, wrapped."""
        return self._secret

    def step_at(self, ts: float) -> int:
        """The RFC 6238 time step ``floor(ts / period)``; exact for 64-bit steps.

        Args:
            ts: Unix seconds.
        """
        if not math.isfinite(ts):
            raise InvalidInputError("the timestamp must be finite")
        return int(ts // self.period)

    def code_at_step(self, step: int) -> str:
        """The code of one time step.

        Args:
            step: The step, between 0 and 2**64-1.
        """
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= _MAX_STEP:
            raise InvalidInputError("a TOTP step must be an integer between 0 and 2**64-1")
        code: str = self._otp.generate_otp(step)
        return code

    def code_at(self, ts: float) -> str:
        """The code at a time.

        Args:
            ts: Unix seconds.
        """
        return self.code_at_step(self.step_at(ts))

    def seconds_left_in_step(self, ts: float) -> float:
        """Seconds until the code for ``ts`` changes.

        Args:
            ts: Unix seconds.
        """
        return (self.step_at(ts) + 1) * self.period - ts

    def verify(self, code: str, *, at: float, window: int = 1) -> int | None:
        """The step whose code matches within ``±window`` steps of ``at``, else None.

        Malformed codes return None rather than raising, because verifying untrusted input is a
        yes/no question. Every candidate is compared in constant time.

        Args:
            code: The code to check.
            at: Unix seconds.
            window: How many steps either side of ``at`` are accepted.
        """
        _check_int("window", window, 0, None)
        try:
            candidate = validate_code_format(code, digits=self.digits).encode()
        except InvalidCodeError:
            return None
        center = self.step_at(at)
        matched: int | None = None
        for step in range(center - window, center + window + 1):
            if not 0 <= step <= _MAX_STEP:
                continue
            if hmac.compare_digest(self.code_at_step(step).encode(), candidate) and matched is None:
                matched = step
        return matched

    def to_uri(self, *, account: str | None = None, issuer: str | None = None) -> Secret[str]:
        """The provisioning URI (it contains the secret, hence wrapped).

        Args:
            account: The account label (default: this TOTP's).
            issuer: The issuer label (default: this TOTP's).

        Raises:
            InvalidInputError: No account name.
        """
        from .otpauth import build_otpauth_uri

        label = account if account is not None else self.account
        if not label:
            raise InvalidInputError("an account name is needed to build an otpauth URI")
        return build_otpauth_uri(
            secret=self._secret,
            account=label,
            issuer=issuer if issuer is not None else self.issuer,
            algorithm=self.algorithm.value,
            digits=self.digits,
            period=self.period,
        )

    def __repr__(self) -> str:
        return (
            f"Totp(digits={self.digits}, algorithm={self.algorithm.value!r}, "
            f"period={self.period}, issuer={self.issuer!r})"
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Totp):
            return NotImplemented
        same_params = (self.digits, self.algorithm, self.period) == (
            other.digits,
            other.algorithm,
            other.period,
        )
        same_key = hmac.compare_digest(self._key.reveal(), other._key.reveal())
        return same_params and same_key

    def __hash__(self) -> int:
        return hash((self.fingerprint, self.digits, self.algorithm, self.period))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Totp is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Totp is immutable")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("Totp holds a secret and cannot be pickled")

    def __copy__(self) -> Totp:
        return self

    def __deepcopy__(self, memo: object) -> Totp:
        return self


def _warn_weak(fingerprint: str, bits: int) -> None:
    with _warned_lock:
        if fingerprint in _warned_weak:
            return
        _warned_weak.add(fingerprint)
    warnings.warn(
        f"TOTP key {fingerprint} has only {bits} bits (112 or more recommended); "
        "it works, but consider re-enrolling MFA to get a longer secret",
        WeakSecretWarning,
        stacklevel=3,
    )
