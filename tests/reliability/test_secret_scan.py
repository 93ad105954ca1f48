"""The secret scan must catch a planted secret, or its silence proves nothing."""

from __future__ import annotations

import logging

import httpx
import pytest

from mfa_common.auth import BasicAuth
from mfa_common.client import BaseClient
from mfa_common.secret import Secret
from tests.secret_scan import SCANNER, SecretScanner


def test_planted_secret_in_a_log_line_is_found() -> None:
    scanner = SecretScanner()
    logger = logging.getLogger("planted.for.test")
    logger.addHandler(scanner)
    logger.propagate = False  # keep the planted line away from the suite-wide scan
    try:
        scanner.remember("correct-horse-battery")
        logger.warning("user logged in with %s", "correct-horse-battery")
        logger.warning("nothing to see here")
    finally:
        logger.removeHandler(scanner)
    leaks = scanner.leaks()
    assert len(leaks) == 1
    assert leaks[0][0].split(":")[0] == "planted.for.test"
    assert "correct-horse-battery" not in repr(leaks)


def test_every_secret_object_is_remembered_by_the_suite_scanner() -> None:
    Secret("a-secret-made-in-a-test")
    assert "a-secret-made-in-a-test" in SCANNER.secrets


def test_short_numeric_codes_are_left_to_targeted_tests() -> None:
    scanner = SecretScanner()
    scanner.remember("123456")
    assert scanner.secrets == set()


@pytest.mark.anyio
async def test_httpx_info_log_of_a_query_token_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    # SDK clients send through the transport and never produce httpx's INFO line; auth backends
    # used with the application's own httpx client do, so the SDK filters that logger too.
    caplog.set_level(logging.INFO, logger="httpx")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    BaseClient("http://127.0.0.1:9", auth=BasicAuth("u", "pw-for-scan"))  # installs the filters
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), base_url="http://127.0.0.1:9"
    ) as raw:
        await raw.get("verify-email", params={"token": "tok-in-query-77"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "verify-email" in text
    assert "tok-in-query-77" not in text


def test_httpcore_trace_headers_and_templated_path_secrets_are_redacted() -> None:
    from mfa_common._logging import mask_templated_segments, redact_text

    trace = "return_value=(b'HTTP/1.1', 401, b'', [(b'x-mfa-token', b'mfa-tok-5d1c'), (b'set-cookie', b'jwt=a.b.c')])"
    redacted = redact_text(trace)
    assert "mfa-tok-5d1c" not in redacted
    assert "a.b.c" not in redacted
    mask_templated_segments("/api/user/mfa/reset/reset-tok-9f8e", "/api/user/mfa/reset/{token}")
    line = redact_text("HTTP Request: PUT http://127.0.0.1/api/user/mfa/reset/reset-tok-9f8e 200")
    assert "reset-tok-9f8e" not in line
    assert "/api/user/mfa/reset/***" in line
