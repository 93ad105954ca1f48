"""``otpauth://`` Key URI parsing and rendering (Google Authenticator Key URI format).

pyotp's ``parse_uri`` keeps an encoded colon inside the account name, rejects lower-case
``algorithm``, upper-case schemes and short secrets, so provisioning URIs that real servers
emit are parsed here instead. Nothing here ever puts the secret or the URI in an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import attrs

from .errors import InvalidInputError, InvalidOtpauthUriError, InvalidSecretError
from .secret import Secret, reveal
from .totp import Algorithm, normalize_base32

__all__ = ["OtpauthUri", "build_otpauth_uri", "parse_otpauth_uri"]

_MAX_URI_LENGTH = 4096
_MAX_PARAMS = 64
_KNOWN_PARAMS = ("secret", "issuer", "algorithm", "digits", "period", "counter")
_UINT_RE = re.compile(r"[0-9]{1,20}")

OtpType = Literal["totp", "hotp"]


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class OtpauthUri:
    """A parsed Key URI. ``extra`` keeps parameters this parser does not interpret."""

    type: OtpType
    secret: Secret[str]
    account: str
    issuer: str | None = None
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    counter: int | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)


def _parse_uint(name: str, value: str) -> int:
    text = value.strip()
    if not _UINT_RE.fullmatch(text):
        raise InvalidOtpauthUriError(f"the {name} parameter must be a non-negative integer")
    return int(text)


def parse_otpauth_uri(uri: str | Secret[str]) -> OtpauthUri:
    """Parse an ``otpauth://totp|hotp/LABEL?PARAMS`` URI.

    The label is ``issuer:account``, the separator a literal or an encoded (``%3A``) colon
    (Key URI format). It is split on its first literal ``:``; failing that, on its first
    encoded one: without an ``issuer`` parameter always (``Example%3Aalice`` is issuer
    ``Example``), with one only when the text before it equals that parameter (so an account
    name that itself holds an encoded colon stays whole). An issuer prefix that disagrees with
    the ``issuer`` parameter is refused, since that is what a phishing QR code looks like.
    """
    text = reveal(uri)
    if not isinstance(text, str):
        raise InvalidOtpauthUriError("an otpauth URI must be a string")
    if len(text) > _MAX_URI_LENGTH:
        raise InvalidOtpauthUriError(f"the otpauth URI is longer than {_MAX_URI_LENGTH} characters")
    try:
        parts = urlsplit(text.strip())
        pairs = parse_qsl(parts.query, keep_blank_values=True, max_num_fields=_MAX_PARAMS)
    except ValueError:
        raise InvalidOtpauthUriError("the otpauth URI is malformed") from None
    if parts.scheme.lower() != "otpauth":
        raise InvalidOtpauthUriError("the URI scheme must be otpauth://")
    otp_type = parts.netloc.lower()
    if otp_type not in ("totp", "hotp"):
        raise InvalidOtpauthUriError("the OTP type must be totp or hotp")

    params: dict[str, str] = {}
    extra: dict[str, str] = {}
    for key, value in pairs:
        lowered = key.lower()
        if lowered in _KNOWN_PARAMS:
            if lowered in params:
                raise InvalidOtpauthUriError(f"the {lowered} parameter appears more than once")
            params[lowered] = value
        else:
            extra.setdefault(key, value)

    raw_secret = params.get("secret", "")
    if not raw_secret.strip():
        raise InvalidOtpauthUriError("the otpauth URI has no secret parameter")
    try:
        secret = normalize_base32(raw_secret)
    except InvalidSecretError as exc:
        raise InvalidOtpauthUriError(f"the secret parameter is invalid: {exc}") from None

    issuer_param = params.get("issuer")
    if issuer_param is not None and not issuer_param.strip():
        issuer_param = None

    prefix, account = _split_label(parts.path.removeprefix("/"), issuer_param)
    if (
        prefix is not None
        and issuer_param is not None
        and issuer_param not in (prefix, prefix.replace("+", " "))
    ):
        raise InvalidOtpauthUriError("the issuer in the label does not match the issuer parameter")
    issuer = issuer_param if issuer_param is not None else prefix

    try:
        algorithm = Algorithm(params.get("algorithm", "SHA1")).value
    except ValueError:
        raise InvalidOtpauthUriError("the algorithm must be SHA1, SHA256 or SHA512") from None

    digits = _parse_uint("digits", params["digits"]) if "digits" in params else 6
    if not 6 <= digits <= 8:
        raise InvalidOtpauthUriError("the digits parameter must be 6, 7 or 8")
    period = _parse_uint("period", params["period"]) if "period" in params else 30
    if period < 1:
        raise InvalidOtpauthUriError("the period parameter must be at least 1 second")
    counter = _parse_uint("counter", params["counter"]) if "counter" in params else None
    if otp_type == "hotp" and counter is None:
        raise InvalidOtpauthUriError("an hotp URI needs a counter parameter")

    return OtpauthUri(
        type="totp" if otp_type == "totp" else "hotp",
        secret=Secret(secret),
        account=account,
        issuer=issuer,
        algorithm=algorithm,
        digits=digits,
        period=period,
        counter=counter,
        extra=extra,
    )


def _split_label(raw_label: str, issuer_param: str | None) -> tuple[str | None, str]:
    """(issuer prefix or None, account) from the still-encoded label."""
    if ":" in raw_label:
        raw_prefix, raw_account = raw_label.split(":", 1)
        prefix = unquote(raw_prefix)
        return (prefix or None), unquote(raw_account).lstrip()
    decoded = unquote(raw_label)
    if ":" in decoded:
        candidate, rest = decoded.split(":", 1)
        if candidate and (issuer_param is None or candidate == issuer_param):
            return candidate, rest.lstrip()
    return None, decoded.lstrip()


def build_otpauth_uri(
    *,
    secret: str | Secret[str],
    account: str,
    issuer: str | None = None,
    algorithm: str = "SHA1",
    digits: int = 6,
    period: int = 30,
) -> Secret[str]:
    """Render a TOTP Key URI the way authenticator apps read it best.

    The label is ``quote(issuer):quote(account)`` and the issuer is repeated as a parameter;
    the secret is upper-case and unpadded; ``algorithm``/``digits``/``period`` appear only
    when they differ from SHA1/6/30, because many apps ignore them anyway.
    """
    normalized = normalize_base32(reveal(secret))
    if not isinstance(account, str) or not account.strip():
        raise InvalidInputError("an otpauth URI needs a non-empty account name")
    if issuer is not None and not issuer.strip():
        issuer = None
    if issuer is not None and ":" in issuer:
        raise InvalidInputError("the issuer of an otpauth URI must not contain ':'")
    if issuer is None and ":" in account:
        # Without an issuer prefix, an app reads "a:b" (even encoded) as issuer "a", account "b".
        raise InvalidInputError("an account name containing ':' needs an issuer in an otpauth URI")
    try:
        algo = Algorithm(algorithm)
    except ValueError:
        raise InvalidInputError("algorithm must be SHA1, SHA256 or SHA512") from None
    if not isinstance(digits, int) or isinstance(digits, bool) or not 6 <= digits <= 8:
        raise InvalidInputError("digits must be 6, 7 or 8")
    if not isinstance(period, int) or isinstance(period, bool) or period < 1:
        raise InvalidInputError("period must be a positive integer")

    label = quote(account, safe="")
    if issuer is not None:
        label = f"{quote(issuer, safe='')}:{label}"
    query: list[tuple[str, str]] = [("secret", normalized)]
    if issuer is not None:
        query.append(("issuer", issuer))
    if algo is not Algorithm.SHA1:
        query.append(("algorithm", algo.value))
    if digits != 6:
        query.append(("digits", str(digits)))
    if period != 30:
        query.append(("period", str(period)))
    return Secret(f"otpauth://totp/{label}?{urlencode(query, quote_via=quote, safe='')}")
