"""Unit tests: sans-I/O protocol helpers, models and the error mapper."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from metalcloud_async.errors import (
    TwoFactorCodeRejectedError,
    map_code_rejection,
    map_error,
)
from metalcloud_async.models import (
    AuthenticationProperties,
    AuthenticationRequest,
    TwoFactorAuthenticationSecret,
    User,
    UserApiKey,
    UserPaginatedList,
    UserUpdatePassword,
    converter,
    decode_data_uri,
)
from metalcloud_async.protocol import (
    ListQuery,
    extract_jwt,
    filter_eq,
    filter_in,
    filter_not,
    if_match_value,
    mentions_two_factor,
    next_page,
    revision_from_etag,
    user_resource,
)
from mfa_common.errors import (
    BadRequestError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
    ServerError,
)
from mfa_common.secret import Secret


def response(status: int, body: Any = None, headers: list[tuple[str, str]] | None = None) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Response(
        status, content=content, headers=headers or [], request=httpx.Request("POST", "http://h/api/v2/x")
    )


# -- protocol -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(7, "7"), (7.0, "7"), ("7", "7"), ('"7"', "7"), ('W/"12"', "12"), (0, "0")]
)
def test_if_match_is_the_bare_revision(value: Any, expected: str) -> None:
    assert if_match_value(value) == expected


@pytest.mark.parametrize("value", [True, -1, 1.5, "abc", "", "W/x"])
def test_if_match_rejects_non_revisions(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        if_match_value(value)


def test_revision_from_etag_variants() -> None:
    assert revision_from_etag("5") == 5
    assert revision_from_etag('"5"') == 5
    assert revision_from_etag('W/"5"') == 5
    assert revision_from_etag(None) is None
    assert revision_from_etag("abc") is None


def test_list_query_params() -> None:
    query = ListQuery(
        page=2,
        limit=500,
        filters={
            "archived": False,
            "accessLevel": [filter_in(["admin", "root"])],
            "id": filter_not(filter_eq(3)),
        },
        sort_by=["id:ASC"],
        search="bob",
        search_by=["email"],
    )
    assert query.page_size == 100
    assert query.params() == [
        ("page", "2"),
        ("limit", "100"),
        ("filter.archived", "$eq:0"),
        ("filter.accessLevel", "$in:admin,root"),
        ("filter.id", "$not:$eq:3"),
        ("sortBy", "id:ASC"),
        ("search", "bob"),
        ("searchBy", "email"),
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"page": 0},
        {"limit": 0},
        {"filters": {"password": "x"}},
        {"sort_by": ["email:ASC"]},
        {"sort_by": ["id:UP"]},
        {"search_by": ["id"]},
    ],
)
def test_list_query_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        ListQuery(**kwargs)


def test_next_page_math() -> None:
    assert next_page(page=1, limit=100, received=100, total_pages=3) == 2
    assert next_page(page=3, limit=100, received=10, total_pages=3) is None
    assert next_page(page=1, limit=100, received=100, total_pages=None, total_items=150) == 2
    assert next_page(page=2, limit=100, received=50, total_pages=None, total_items=150) is None
    assert next_page(page=4, limit=100, received=100, total_pages=None) == 5
    assert next_page(page=5, limit=100, received=99, total_pages=None) is None
    assert next_page(page=1, limit=100, received=0, total_pages=9) is None


def test_user_resource() -> None:
    assert user_resource(5) == "/api/v2/users/5"
    assert user_resource(5, "actions", "archive") == "/api/v2/users/5/actions/archive"
    assert user_resource(3_000_000_000, "ssh-keys", 7) == "/api/v2/users/3000000000/ssh-keys/7"
    with pytest.raises(InvalidInputError):
        user_resource(True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "body", "source"),
    [
        ([("set-cookie", "jwt=a.b.c; Path=/; HttpOnly")], None, "cookie:jwt"),
        ([("set-cookie", "access_token=a.b.c; Path=/")], None, "cookie:access_token"),
        ([("authorization", "Bearer a.b.c")], None, "header:authorization"),
        ([("x-auth-token", "a.b.c")], None, "header:x-auth-token"),
        ([], {"id": 1, "token": "a.b.c"}, "body:token"),
        ([], {"id": 1, "jwt": "Bearer a.b.c"}, "body:jwt"),
    ],
)
def test_extract_jwt_variants(headers: list[tuple[str, str]], body: Any, source: str) -> None:
    found = extract_jwt(response(200, body, headers), body)
    assert found is not None
    assert found.source == source and found.token.reveal() == "a.b.c"


def test_extract_jwt_ignores_deleted_cookie_and_absence() -> None:
    assert extract_jwt(response(200, {}, [("set-cookie", 'jwt=""; Max-Age=0; Path=/')]), {}) is None
    assert extract_jwt(response(200, {"id": 1}), {"id": 1}) is None


def test_two_factor_hints() -> None:
    assert mentions_two_factor("2FA token required")
    assert mentions_two_factor("Authenticator code needed")
    assert not mentions_two_factor("Invalid credentials")
    assert not mentions_two_factor(None)


# -- models ---------------------------------------------------------------------------------


def test_user_tolerates_unknown_enums_missing_and_extra_fields() -> None:
    user = converter.structure(
        {
            "id": 3.0,
            "revision": "4",
            "provider": "local",
            "lastLoginType": "password",
            "isArchived": 1,
            "new": {},
        },
        User,
    )
    assert (user.id, user.revision) == (3, 4)
    assert user.provider == "local" and user.last_login_type == "password"
    assert user.is_archived is True and user.email == ""


def test_paginated_list_envelope() -> None:
    page = converter.structure(
        {
            "data": [{"id": 1, "revision": 2, "email": "a@b", "emailStatus": "weird"}],
            "meta": {"itemsPerPage": 20, "totalPages": 1, "sortBy": [["id", "ASC"]]},
            "links": {"current": "http://h/api/v2/users?page=1"},
        },
        UserPaginatedList,
    )
    assert page.data[0].email_status == "weird"
    assert page.meta.total_pages == 1 and page.links is not None


def test_two_factor_secret_is_secret_and_decodes_png() -> None:
    png = b"\x89PNG\r\n\x1a\nrest"
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    secret = converter.structure(
        {"qrCode": uri, "secret2FA": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}, TwoFactorAuthenticationSecret
    )
    assert secret.qr_png.reveal() == png
    assert "JBSWY3DP" not in repr(secret) and "base64" not in repr(secret)
    assert secret.totp().code_at(59) == secret.totp().code_at(31)
    with pytest.raises(InvalidInputError):
        decode_data_uri("http://not-data")


def test_request_bodies_and_api_key() -> None:
    body = converter.unstructure(
        AuthenticationRequest("mysql", AuthenticationProperties("a@b", Secret("pw")))
    )
    assert body == {"provider": "mysql", "properties": {"email": "a@b", "password": "pw"}}
    assert converter.unstructure(UserUpdatePassword(Secret("n"))) == {"newPassword": "n"}
    key = converter.structure({"apiKey": "12:" + "a" * 63}, UserApiKey)
    assert key.user_id == 12 and "aaaa" not in repr(key)
    assert converter.structure({"apiKey": "3000000000:" + "a" * 63}, UserApiKey).user_id == 3_000_000_000
    # Only ASCII digits make an id: "١٢" is not user 12, "²" is no id at all.
    for prefix in ("\u0661\u0662", "\u00b2", "1e7"):
        assert converter.structure({"apiKey": prefix + ":" + "a" * 63}, UserApiKey).user_id is None


# -- errors ---------------------------------------------------------------------------------


def test_nest_error_string_message() -> None:
    error = map_error(response(404, {"statusCode": 404, "message": "User not found", "error": "Not Found"}))
    assert isinstance(error, NotFoundError)
    assert error.server_message == "User not found" and error.details["error"] == "Not Found"


def test_nest_error_list_message() -> None:
    error = map_error(
        response(400, {"statusCode": 400, "message": ["a must be x", "b must be y"], "error": "Bad"})
    )
    assert isinstance(error, BadRequestError)
    assert error.details["messages"] == ["a must be x", "b must be y"]
    assert error.server_message == "a must be x; b must be y"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (409, ConflictError),
        (412, PreconditionFailedError),
        (428, PreconditionRequiredError),
        (503, ServerError),
    ],
)
def test_status_classes(status: int, cls: type[Exception]) -> None:
    assert isinstance(map_error(response(status, {"message": "x"})), cls)


def test_non_json_error_body_is_tolerated() -> None:
    bad = httpx.Response(502, content=b"<html>", request=httpx.Request("GET", "http://h/x"))
    error = map_error(bad)
    assert isinstance(error, ServerError) and error.server_message is None


def test_code_rejection_mapping() -> None:
    assert isinstance(
        map_code_rejection(response(401, {"message": "Invalid 2FA token"})), TwoFactorCodeRejectedError
    )
    assert isinstance(map_code_rejection(response(404, {"message": "User not found"})), NotFoundError)


# -- the fake's command line ----------------------------------------------------------------


def test_fake_command_line_starts_and_serves(tmp_path: Any) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"email": "ops@x.test", "password": "pw", "api_key": "77:" + "k" * 63}]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metalcloud_async.testing",
            "--port",
            "0",
            "--users",
            "5",
            "--accounts",
            str(accounts),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Listening on "):
                break
        text = "".join(lines)
        # The file's accounts replace the demo ones.
        assert "admin@metalcloud.test" not in text and "ops@x.test" in text and "5 seeded users" in text
        url = lines[-1].split()[2]
        answer = httpx.get(url + "/api/v2/user", headers={"Authorization": "Bearer 77:" + "k" * 63})
        assert answer.status_code == 200 and answer.json()["email"] == "ops@x.test"
        assert answer.headers["etag"] == "1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_fake_command_line_configures_the_lockout() -> None:
    from metalcloud_async.testing.__main__ import build_fake, build_parser

    fake, users = build_fake(
        build_parser().parse_args(["--max-failed-logins", "2", "--failed-login-window", "60"])
    )
    assert (fake.max_failed_logins, fake.failed_login_window) == (2, 60.0) and users
    default, _ = build_fake(build_parser().parse_args(["--no-demo"]))
    assert (default.max_failed_logins, default.failed_login_window) == (5, 300.0)
