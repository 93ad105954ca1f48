"""The sans-I/O half: login classification, headers, the error mapper, the models."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest

from mfa_common.errors import (
    AccountLockedError,
    AuthenticationError,
    BadRequestError,
    MfaCodeRejectedError,
    MfaRequiredError,
    MfaTokenExpiredError,
    NotFoundError,
    RecoveryCodeRejectedError,
    ServerError,
)
from mfa_common.secret import Secret
from mfa_common.xmfa import (
    EmailCodeRejectedError,
    LoginAnswer,
    MfaDisable,
    MfaEnable,
    MfaGenerate,
    Operation,
    RecoveryWindowClosedError,
    Role,
    UserAuth,
    XMfaPaths,
    classify_login,
    map_error,
)
from mfa_common.xmfa.errors import is_credential_rejection, parse_error_body
from mfa_common.xmfa.models import converter
from mfa_common.xmfa.protocol import expires_at, lockout_until, mfa_token_of

BASE = "http://127.0.0.1:1"


def answer(
    status: int,
    method: str,
    path: str,
    *,
    body: object = None,
    headers: dict[str, str] | None = None,
    sent: object = None,
) -> httpx.Response:
    request = httpx.Request(method, BASE + path, json=sent)
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Response(status, content=content, headers=headers or {}, request=request)


# --------------------------------------------------------------------------- login answers


def test_login_200_with_empty_mfa_token_header_is_ok() -> None:
    assert classify_login(200, {"X-Mfa-Token": "", "X-Account-Lockout": "0"}) is LoginAnswer.OK


def test_login_401_with_token_header_any_case_means_mfa() -> None:
    for name in ("X-MFA-Token", "x-mfa-token", "X-Mfa-Token"):
        assert classify_login(401, {name: "bf265bf8-0065-4f44-a3ac-55eb3134c6ec"}) is LoginAnswer.MFA_REQUIRED
    assert classify_login(401, httpx.Headers({"x-mfa-token": "u"})) is LoginAnswer.MFA_REQUIRED


def test_login_401_with_empty_token_header_is_a_wrong_password() -> None:
    assert classify_login(401, {"X-MFA-Token": "  ", "X-Account-Lockout": "0"}) is LoginAnswer.ERROR


def test_login_429_lockout_vs_plain_rate_limit() -> None:
    assert classify_login(429, {"X-Account-Lockout": "1711575401"}) is LoginAnswer.LOCKED
    assert classify_login(429, {"X-Account-Lockout": "0"}) is LoginAnswer.ERROR
    assert classify_login(429, {}) is LoginAnswer.ERROR


def test_header_readers() -> None:
    assert mfa_token_of({"x-mfa-token": ""}) is None
    assert lockout_until({"X-Account-Lockout": "0"}) is None
    assert lockout_until({"x-account-lockout": "1711575401"}) == datetime.fromtimestamp(
        1711575401, tz=timezone.utc
    )
    assert expires_at({"X-Expires-At": "1711575401"}) == datetime.fromtimestamp(1711575401, tz=timezone.utc)
    assert expires_at({"X-Expires-At": "garbage"}) is None


# --------------------------------------------------------------------------- paths


def test_operation_of_matches_suffix_and_reset_template() -> None:
    paths = XMfaPaths()
    assert paths.operation_of("POST", "/api/login") is Operation.LOGIN
    assert paths.operation_of("POST", "/prefix/api/user/mfa/auth") is Operation.AUTH
    assert paths.operation_of("PUT", "/api/user/mfa/reset/abc-123") is Operation.RESET
    assert paths.operation_of("POST", "/api/user/mfa/reset") is Operation.REQUEST_RESET
    assert paths.operation_of("PUT", "/api/user/mfa/recovery/disable") is Operation.RECOVERY_DISABLE
    assert paths.operation_of("GET", "/api/auth/user") is Operation.CURRENT_USER
    assert paths.operation_of("POST", "/api/auth/user") is None
    assert XMfaPaths(auth="/api/mfa/auth").operation_of("POST", "/api/mfa/auth") is Operation.AUTH
    assert paths.reset_path("a/b c") == "/api/user/mfa/reset/a%2Fb%20c"
    with pytest.raises(ValueError):
        XMfaPaths(reset="/api/user/mfa/reset")


# --------------------------------------------------------------------------- error mapper

mapper = map_error


def test_lockout_maps_to_account_locked_with_unlock_time() -> None:
    until = 4_000_000_000
    err = mapper(answer(429, "POST", "/api/login", headers={"X-Account-Lockout": str(until)}))
    assert isinstance(err, AccountLockedError)
    assert err.locked_until == datetime.fromtimestamp(until, tz=timezone.utc)
    assert err.retry_after is not None and err.retry_after > 0


def test_login_mfa_and_wrong_password() -> None:
    err = mapper(answer(401, "POST", "/api/login", headers={"X-MFA-Token": "tok"}))
    assert isinstance(err, MfaRequiredError)
    assert "tok" not in str(err)
    err = mapper(answer(401, "POST", "/api/login", body={"message": "auth unauthorized"}))
    assert type(err) is AuthenticationError
    assert err.server_message == "auth unauthorized"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"message": "invalid MFA code"}, MfaCodeRejectedError),
        (403, {"message": "forbidden"}, MfaCodeRejectedError),
        (401, {"message": "MFA token is invalid or expired"}, MfaTokenExpiredError),
        (404, {"message": "not found"}, MfaTokenExpiredError),
        (400, {"message": "invalid entity", "fields": {"code": "must be 6 digits"}}, BadRequestError),
        (500, {"message": "internal server error"}, ServerError),
    ],
)
def test_auth_mfa_errors(status: int, body: dict[str, object], expected: type) -> None:
    err = mapper(answer(status, "POST", "/api/user/mfa/auth", body=body))
    assert type(err) is expected
    assert err.status_code == status


def test_recover_errors() -> None:
    err = mapper(answer(401, "POST", "/api/user/mfa/recover", body={"message": "invalid recovery code"}))
    assert type(err) is RecoveryCodeRejectedError


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({"recovery_code": "X"}, RecoveryCodeRejectedError),
        ({"code": "123456"}, MfaCodeRejectedError),
        ({"main_email_code": "AAAAA", "recovery_email_code": "BBBBB"}, EmailCodeRejectedError),
        ({}, RecoveryWindowClosedError),
    ],
)
def test_disable_errors_follow_what_was_sent(sent: dict[str, str], expected: type) -> None:
    err = mapper(answer(403, "PUT", "/api/user/mfa/disable", body={"message": "invalid code"}, sent=sent))
    assert type(err) is expected


def test_disable_jwt_rejection_stays_authentication_error() -> None:
    body = {"message": "missing or malformed jwt or API token"}
    err = mapper(answer(401, "PUT", "/api/user/mfa/disable", body=body, sent={"code": "123456"}))
    assert type(err) is AuthenticationError


def test_reset_and_recovery_disable() -> None:
    err = mapper(answer(403, "PUT", "/api/user/mfa/reset/tok", body={"message": "invalid codes"}))
    assert type(err) is EmailCodeRejectedError
    err = mapper(answer(404, "PUT", "/api/user/mfa/reset/tok", body={"message": "not found"}))
    assert type(err) is NotFoundError
    err = mapper(
        answer(403, "PUT", "/api/user/mfa/recovery/disable", body={"message": "no recovery session"})
    )
    assert type(err) is RecoveryWindowClosedError


def test_error_fields_become_details_and_message_has_no_body_values() -> None:
    body = {"message": "invalid entity", "fields": {"username": "must be at least 3 characters"}}
    err = mapper(
        answer(400, "POST", "/api/login", body=body, sent={"username": "ab", "password": "hunter22"})
    )
    assert err.details == {"username": "must be at least 3 characters"}
    assert "hunter22" not in str(err)


def test_credential_rejection_ignores_code_errors() -> None:
    assert is_credential_rejection(answer(401, "GET", "/api/auth/user", body={"message": "token expired"}))
    assert is_credential_rejection(answer(401, "GET", "/api/auth/user"))
    assert not is_credential_rejection(
        answer(401, "PUT", "/api/user/mfa/enable", body={"message": "invalid code"})
    )
    assert not is_credential_rejection(answer(403, "GET", "/api/auth/user", body={"message": "forbidden"}))


def test_parse_error_body_tolerates_junk() -> None:
    def body(content: bytes) -> httpx.Response:
        return httpx.Response(400, content=content)

    assert parse_error_body(body(b"")).message is None
    assert parse_error_body(body(b"not json")).details == {}
    assert parse_error_body(body(b"[1]")).body == [1]
    parsed = parse_error_body(body(b'{"message": 3, "fields": {"a": 1}}'))
    assert parsed.message is None and parsed.details == {"a": "1"}


# --------------------------------------------------------------------------- models


def test_user_auth_tolerates_unknown_role_and_extra_fields() -> None:
    data = {
        "token": "a.b.c",
        "id": "1857f8cd-94c2-4b2a-930a-0bb608a33457",
        "origin": "local",
        "user": "example",
        "name": "example",
        "email": "example@example.com",
        "recovery_email": "r@example.com",
        "tenant": "",
        "role": "superuser",
        "mfa": True,
        "admin": False,
        "max_namespaces": -1,
        "auth_methods": ["local"],
        "something_new": {"x": 1},
    }
    user = converter.structure(data, UserAuth)
    assert user.token.reveal() == "a.b.c"
    assert user.role == "superuser"
    assert converter.structure({**data, "role": "owner"}, UserAuth).role is Role.OWNER
    assert user.auth_methods == ("local",)
    assert "a.b.c" not in repr(user)


def test_secret_models_round_trip_without_leaking() -> None:
    gen = converter.structure(
        {"link": "otpauth://totp/x?secret=AAAA", "secret": "AAAA", "recovery_codes": ["MLNSPOB2L2ZRO2D5"]},
        MfaGenerate,
    )
    assert "AAAA" not in repr(gen) and "MLNSPOB2L2ZRO2D5" not in repr(gen)
    body = converter.unstructure(MfaEnable(Secret("123456"), gen.secret, gen.recovery_codes))
    assert body == {"code": "123456", "secret": "AAAA", "recovery_codes": ["MLNSPOB2L2ZRO2D5"]}
    assert converter.unstructure(MfaDisable()) == {}
    assert converter.unstructure(MfaDisable(recovery_code=Secret("X"))) == {"recovery_code": "X"}
