"""Minimal HS256 JWT used by the fakes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from mfa_common.testing import decode_jwt, encode_jwt
from mfa_common.testing._jwt import JwtExpired, JwtInvalid

pytestmark = pytest.mark.timeout(10)

KEY = b"fake-server-signing-key"
NOW = 1_700_000_000.0


def segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def sign(header: object, payload: object, key: bytes = KEY) -> str:
    signing_input = f"{segment(header)}.{segment(payload)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_round_trip() -> None:
    claims = {"sub": "42", "email": "ana@example.com", "exp": NOW + 60, "scopes": ["a", "b"]}
    token = encode_jwt(claims, KEY)
    assert token.count(".") == 2
    assert "=" not in token
    assert decode_jwt(token, KEY, now=NOW) == claims


def test_interoperates_with_a_hand_made_token() -> None:
    token = sign({"alg": "HS256", "typ": "JWT"}, {"sub": "7"})
    assert decode_jwt(token, KEY, now=NOW) == {"sub": "7"}


def test_tampered_payload_is_rejected() -> None:
    token = encode_jwt({"sub": "42", "admin": False}, KEY)
    header, _, signature = token.split(".")
    forged = f"{header}.{segment({'sub': '42', 'admin': True})}.{signature}"
    with pytest.raises(JwtInvalid, match="signature"):
        decode_jwt(forged, KEY, now=NOW)


def test_wrong_key_is_rejected() -> None:
    with pytest.raises(JwtInvalid):
        decode_jwt(encode_jwt({"sub": "1"}, KEY), b"other-key", now=NOW)


def test_other_algorithms_are_rejected() -> None:
    unsigned = f"{segment({'alg': 'none'})}.{segment({'sub': '1'})}."
    with pytest.raises(JwtInvalid):
        decode_jwt(unsigned, KEY, now=NOW)
    with pytest.raises(JwtInvalid, match="algorithm"):
        decode_jwt(sign({"alg": "HS512"}, {"sub": "1"}), KEY, now=NOW)


def test_expiry() -> None:
    token = encode_jwt({"sub": "1", "exp": NOW}, KEY)
    assert decode_jwt(token, KEY, now=NOW - 1)["sub"] == "1"
    with pytest.raises(JwtExpired):
        decode_jwt(token, KEY, now=NOW)
    with pytest.raises(JwtInvalid):  # JwtExpired is a JwtInvalid
        decode_jwt(token, KEY, now=NOW + 3600)
    assert decode_jwt(token, KEY, now=NOW + 5, leeway=10)["sub"] == "1"
    with pytest.raises(JwtInvalid, match="not a number"):
        decode_jwt(encode_jwt({"exp": "soon"}, KEY), KEY, now=NOW)


def test_not_before() -> None:
    token = encode_jwt({"nbf": NOW + 10}, KEY)
    with pytest.raises(JwtInvalid, match="not yet valid"):
        decode_jwt(token, KEY, now=NOW)
    assert decode_jwt(token, KEY, now=NOW + 10) == {"nbf": NOW + 10}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "!!!.e30.sig",
        f"{segment({'alg': 'HS256'})}.{segment([1, 2])}.sig",
        f"{segment('header')}.{segment({})}.sig",
        "ü.e30.c2ln",
    ],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(JwtInvalid):
        decode_jwt(token, KEY, now=NOW)


def test_non_object_payload_with_valid_signature() -> None:
    with pytest.raises(JwtInvalid, match="JSON object"):
        decode_jwt(sign({"alg": "HS256"}, [1, 2]), KEY, now=NOW)
