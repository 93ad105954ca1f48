"""Sans-I/O protocol, models and error mapping: no network."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from mfa_common.errors import (
    AuthenticationError,
    BadRequestError,
    InvalidCodeError,
    InvalidInputError,
    MfaCodeRejectedError,
    MfaRequiredError,
    PermissionDeniedError,
    ServerError,
)
from mfa_common.secret import Secret
from quatrix_async import protocol
from quatrix_async.errors import (
    QuatrixErrorCode,
    SessionExpiredError,
    UserBlacklistedError,
    map_error,
)
from quatrix_async.models import (
    AccountStatus,
    AuthType,
    ProfileResp,
    ProfileSetMfaResp,
    ProfileSetReq,
    ResetAuthType,
    SessionLoginResp,
    SuperAdmin,
    TwoFactorSecret,
    UserResetMfaReq,
    UserResp,
    UserSetMfaReq,
    converter,
)

PNG = b"\x89PNG\r\n\x1a\nfake"


def test_basic_authorization_matches_the_documented_example() -> None:
    header = protocol.basic_authorization("test@example.com", Secret("qwerty"))
    assert header.reveal() == "Basic dGVzdEBleGFtcGxlLmNvbTpxd2VydHk="
    assert "qwerty" not in repr(header)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Mfa-Code": "71"}, 71),
        ({"mfa-code": "73"}, 73),
        ({"MFA-CODE": " 61 "}, 61),
        ({"Mfa-Code": "71.0"}, 71),
        ({"Mfa-Code": "nope"}, None),
        ({}, None),
    ],
)
def test_parse_mfa_code_is_case_insensitive_and_numeric(
    headers: dict[str, str], expected: int | None
) -> None:
    assert protocol.parse_mfa_code(headers) == expected


def test_read_login_response_classifies_every_answer() -> None:
    body = json.dumps({"session_id": "s-1"}).encode()
    ok = protocol.read_login_response(200, {}, body)
    assert ok.kind == "logged_in"
    assert ok.session_id is not None
    assert ok.session_id.reveal() == "s-1"
    totp = protocol.read_login_response(207, {"mfa-code": "71"}, body, user="a@b.c")
    assert totp.kind == "mfa"
    assert totp.challenge is not None
    assert totp.challenge.kind == "totp"
    assert totp.challenge.user == "a@b.c"
    pin = protocol.read_login_response(207, {"Mfa-Code": "73"}, body)
    assert pin.challenge is not None
    assert pin.challenge.kind == "pin"
    assert protocol.read_login_response(207, {"Mfa-Code": "61"}, body).kind == "captcha"
    assert protocol.read_login_response(207, {"Mfa-Code": "99"}, body).kind == "unknown_mfa"
    assert protocol.read_login_response(207, {}, b"not json").session_id is None
    assert protocol.read_login_response(401, {}, b"{}").kind == "error"


def test_mfa_step_body_uses_the_documented_flat_shape() -> None:
    assert protocol.mfa_step_body(AuthType.TWO_FA, "123456") == {"auth_type": "2FA", "code": "123456"}
    # A PIN travels as base64 of its UTF-8 bytes by default, plain on request.
    assert protocol.mfa_step_body(AuthType.PIN, Secret("12345")) == {"auth_type": "PIN", "code": "MTIzNDU="}
    plain = protocol.mfa_step_body(AuthType.PIN, "12345", pin_encoding="plain")
    assert plain == {"auth_type": "PIN", "code": "12345"}


def test_validate_mfa_code() -> None:
    assert protocol.validate_mfa_code(AuthType.TWO_FA, "123 456").reveal() == "123456"
    with pytest.raises(InvalidCodeError):
        protocol.validate_mfa_code(AuthType.TWO_FA, "12345")
    with pytest.raises(InvalidCodeError):
        protocol.validate_mfa_code(AuthType.PIN, " ")
    assert protocol.validate_mfa_code(AuthType.PIN, "ab123").reveal() == "ab123"
    for wrong_length in ("1234", "123456"):  # a PIN is 5 characters, refused before sending
        with pytest.raises(InvalidCodeError):
            protocol.validate_mfa_code(AuthType.PIN, wrong_length)


def test_set_password_body_base64_encodes_both_passwords() -> None:
    body = protocol.set_password_body("old-pässword", Secret("new-password"))
    assert base64.b64decode(body["password"]).decode() == "old-pässword"
    assert base64.b64decode(body["new_password"]).decode() == "new-password"
    with pytest.raises(InvalidInputError):
        protocol.set_password_body("old-password", "short")


def test_models_keep_secrets_out_of_reprs_and_omit_unset_fields() -> None:
    resp = converter.structure({"session_id": "sess-secret"}, SessionLoginResp)
    assert "sess-secret" not in repr(resp)
    assert converter.unstructure(ProfileSetReq(language="en")) == {"language": "en"}
    req = UserSetMfaReq(ids=["u1", "u2"], auth_type=AuthType.PIN, code=Secret("12345"))
    assert converter.unstructure(req) == {"ids": ["u1", "u2"], "auth_type": "PIN", "code": "12345"}
    assert "12345" not in repr(req)
    reset = converter.unstructure(UserResetMfaReq(ids=["u"], auth_type=ResetAuthType.TWO_FA))
    assert reset == {"ids": ["u"], "auth_type": "2FA"}


def test_models_tolerate_unknown_fields_enums_and_old_flag_shapes() -> None:
    profile = converter.structure(
        {
            "id": "u",
            "quota": 5.0,
            "account_status": "X",
            "share_types": {"public_share": "Y", "tracked_share": False},
            "brand_new_field": [1, 2],
        },
        ProfileResp,
    )
    assert profile.quota == 5
    assert profile.account_status == "X"
    assert profile.share_types is not None
    assert profile.share_types.public_share is True
    assert profile.share_types.tracked_share is False
    assert converter.structure({"account_status": "A"}, ProfileResp).account_status is AccountStatus.ACTIVE
    user = converter.structure({"super_admin": "Y", "groups": [{"id": "g", "metadata": {}}]}, UserResp)
    assert user.super_admin is SuperAdmin.YES
    assert user.groups[0].id == "g"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("one", ["one"]), (["one", "two"], ["one", "two"]), ("one, two", ["one", "two"]), (None, [])],
)
def test_profile_set_mfa_resp_accepts_a_string_or_a_list(raw: object, expected: list[str]) -> None:
    resp = converter.structure({} if raw is None else {"session_ids": raw}, ProfileSetMfaResp)
    assert [s.reveal() for s in resp.session_ids] == expected


@pytest.mark.parametrize(
    "payload",
    [
        base64.b64encode(PNG).decode(),
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
        {"qr_code": base64.b64encode(PNG).decode(), "secret": "JBSWY3DPEHPK3PXP"},
        {"image": base64.b64encode(PNG).decode()},
    ],
)
def test_two_factor_secret_accepts_a_bare_string_or_an_object(payload: object) -> None:
    result = converter.structure(payload, TwoFactorSecret)
    assert result.qr_png.reveal() == PNG
    if isinstance(payload, dict) and "secret" in payload:
        assert result.secret is not None
        assert result.secret.reveal() == "JBSWY3DPEHPK3PXP"


def _response(status: int, body: object, *, raw: bytes | None = None) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.Response(
        status,
        content=content,
        headers={"Content-Type": "application/json"},
        request=httpx.Request("GET", "https://h/api/1.0/profile"),
    )


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, 83, MfaCodeRejectedError),
        (401, 84, MfaCodeRejectedError),
        (401, 74, UserBlacklistedError),
        (401, 71, MfaRequiredError),
        (401, 73, MfaRequiredError),
        (401, 60, SessionExpiredError),
        (401, 14, AuthenticationError),
        (403, 70, PermissionDeniedError),
        (400, 10, BadRequestError),
        (503, -1, ServerError),
    ],
)
def test_error_mapper(status: int, code: int, cls: type[Exception]) -> None:
    error = map_error(_response(status, {"code": code, "msg": "text", "details": {"name": "x"}}))
    assert type(error) is cls
    assert error.error_code == code
    assert error.status_code == status
    assert error.server_message == "text"
    assert error.details == {"name": "x"}
    assert f"code {code}" in str(error)


def test_error_mapper_survives_non_json_bodies() -> None:
    error = map_error(_response(500, None, raw=b"<html>oops</html>"))
    assert isinstance(error, ServerError)
    assert error.error_code is None
    assert QuatrixErrorCode.WRONG_AUTH_CODE == 83


def test_a_2fa_answer_nested_past_the_json_parser_is_no_png_not_a_crash() -> None:
    """Found by the hostile-input test: ``json.loads`` raises RecursionError on deep nesting."""
    from quatrix_async.models import two_factor_from_body

    with pytest.raises(ValueError):
        two_factor_from_body(b"[" * 100_000, "application/json")
