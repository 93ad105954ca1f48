"""Error messages: one absolute redacted URL, no repeated words, no empty separators, a
lockout's end; a base URL that is not an http(s) URL is refused at construction."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from metalcloud_async import MetalCloudClient
from mfa_common import errors
from mfa_common._logging import redact_url
from mfa_common.client import BaseClient, build_status_error, default_error_mapper
from quatrix_async import QuatrixClient

URL = "https://api.example.com/api/v2/users/7?token=tok-secret"


def _response(status: int, **kw: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", URL), **kw)  # type: ignore[arg-type]


def test_a_code_equal_to_the_message_or_reason_is_not_repeated() -> None:
    error = build_status_error(_response(401), server_message="Unauthorized", error_code="Unauthorized")
    text = str(error)
    assert text.count("Unauthorized") == 1
    assert "[code" not in text
    assert str(build_status_error(_response(401), error_code="unauthorized")).count("nauthorized") == 1


def test_a_status_without_a_message_has_no_empty_separator() -> None:
    text = str(default_error_mapper(_response(503)))
    assert text == "POST https://api.example.com/api/v2/users/7?token=*** -> 503 Service Unavailable"
    assert " : " not in text and not text.endswith(":")


def test_a_distinct_code_and_message_are_both_kept() -> None:
    text = str(build_status_error(_response(400), server_message="email is invalid", error_code=83))
    assert text.endswith("-> 400 Bad Request [code 83]: email is invalid")


def test_every_message_carries_the_absolute_redacted_url() -> None:
    text = str(default_error_mapper(_response(404, json={"message": "no such user"})))
    assert "https://api.example.com/api/v2/users/7" in text
    assert "tok-secret" not in text


def test_a_lockout_message_names_the_unlock_time() -> None:
    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    error = build_status_error(
        _response(429), server_message="account locked", cls=errors.AccountLockedError, locked_until=until
    )
    assert "2030-01-02T03:04:05+00:00" in str(error)
    assert isinstance(error, errors.AccountLockedError) and error.locked_until == until


def test_the_xmfa_lockout_answer_names_the_unlock_time() -> None:
    from mfa_common.xmfa.errors import map_error

    response = httpx.Response(
        429,
        headers={"X-Account-Lockout": "1893456000"},
        json={"message": "too many attempts"},
        request=httpx.Request("POST", "https://api.example.com/api/login"),
    )
    error = map_error(response)
    assert isinstance(error, errors.AccountLockedError)
    assert "locked until 2030-01-01T00:00:00+00:00" in str(error)


@pytest.mark.parametrize("bad", ["127.0.0.1:28081", "not a url", "", "ftp://host/x", "http://"])
@pytest.mark.parametrize("cls", [BaseClient, QuatrixClient, MetalCloudClient])
def test_a_bad_base_url_is_refused_at_construction(cls: type, bad: str) -> None:
    with pytest.raises(errors.InvalidInputError):
        cls(bad)


@pytest.mark.parametrize(
    ("url", "template", "expected"),
    [
        (
            "https://acme.quatrix.it/api/1.0/session/unblock-captcha?token=abc",
            "session/unblock-captcha?token=***",
            "https://acme.quatrix.it/api/1.0/session/unblock-captcha?token=***",
        ),
        (
            "https://h.example/api/1.0/user/reset/SECRET",
            "user/reset/{token}",
            "https://h.example/api/1.0/user/reset/{token}",
        ),
        (
            "https://h.example/api/1.0/user/reset/SECRET",
            "/api/1.0/user/reset/{token}",
            "https://h.example/api/1.0/user/reset/{token}",
        ),
    ],
)
def test_a_template_relative_to_the_base_path_gives_one_absolute_url(
    url: str, template: str, expected: str
) -> None:
    # A relative template stands for the trailing segments; its query is not repeated.
    assert redact_url(url, template) == expected
