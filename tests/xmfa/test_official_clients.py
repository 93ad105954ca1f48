"""What ShellHub's official clients expect of the X-MFA fake, written down where it goes beyond
``tests/specs/shellhub-mfa.yaml`` (every answer is still validated against the document):

* a wrong code on ``POST /api/user/mfa/auth``: the console (``MfaLogin.vue``, and its test's
  mocked ``500``) treats a 500 as "invalid code", while a 401 makes it show a generic error and
  its global 401 handler log the user out. The fake answers the 500 by default, a 401 with the
  ``auth_failure_status=401`` switch; both are reachable from ``python -m mfa_common.xmfa.testing``,
  as is the MFA token's lifetime; the SDK reads either status as ``MfaCodeRejectedError``;
* an unauthenticated request gets an empty 401 (the server's ``c.NoContent``), although the
  document declares a JSON body there: the fake follows the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.errors import MfaCodeRejectedError, MfaTokenExpiredError
from mfa_common.xmfa import XMfaClient
from mfa_common.xmfa.testing import XMfaFake
from mfa_common.xmfa.testing.__main__ import build_fake, build_parser
from tests.contract import ValidatingTransport

from .conftest import SPEC, unexpected_violations

ROOT = Path(__file__).resolve().parents[2]
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
WRONG_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def validating(fake: XMfaFake) -> ValidatingTransport:
    return ValidatingTransport(httpx.ASGITransport(fake), SPEC)


async def _wrong_code(fake: XMfaFake, transport: httpx.AsyncBaseTransport) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as raw:
        login = await raw.post("/api/login", json={"username": "bob", "password": "bob-password"})
        token = login.headers["X-MFA-Token"]
        return await raw.post("/api/user/mfa/auth", json={"token": token, "code": "000000"})


async def _auth_by_hand(transport: httpx.AsyncBaseTransport, clock: FakeClock, code: str) -> None:
    """bob's password, then ``code`` for the MFA token, through ``client.session``."""
    async with XMfaClient("http://127.0.0.1", clock=clock, transport=transport) as client:
        challenge = await client.session.login("bob", "bob-password")
        assert challenge.mfa_token is not None
        await client.session.auth_mfa(challenge.mfa_token, code)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("switch", "status", "body"),
    [
        ({}, 500, {"message": "internal server error"}),  # the default: what the console expects
        ({"auth_failure_status": 401}, 401, {"message": "invalid MFA code"}),
    ],
)
async def test_a_wrong_code_on_mfa_auth_is_the_consoles_500_unless_switched(
    clock: FakeClock, switch: dict[str, Any], status: int, body: dict[str, str]
) -> None:
    fake = XMfaFake(clock=clock, **switch)
    fake.add_user("bob", "bob-password", totp_secret=SECRET)
    transport = validating(fake)
    answer = await _wrong_code(fake, transport)
    assert (answer.status_code, answer.json()) == (status, body)
    assert unexpected_violations(transport) == []


@pytest.mark.anyio
@pytest.mark.parametrize("status", [None, 401, 500])
async def test_the_sdk_reads_either_status_as_a_rejected_code(clock: FakeClock, status: int | None) -> None:
    fake = XMfaFake(clock=clock) if status is None else XMfaFake(clock=clock, auth_failure_status=status)
    fake.add_user("bob", "bob-password", totp_secret=SECRET)
    transport = validating(fake)
    async with XMfaClient(
        "http://127.0.0.1",
        username="bob",
        password="bob-password",
        totp_secret=WRONG_SECRET,
        clock=clock,
        transport=transport,
    ) as client:
        with pytest.raises(MfaCodeRejectedError) as caught:
            await client.user.get()
        assert caught.value.status_code == (status or 500)
    with pytest.raises(MfaCodeRejectedError):
        await _auth_by_hand(transport, clock, "000000")
    assert unexpected_violations(transport) == []


def test_the_command_line_sets_the_wrong_code_status_and_the_token_lifetime() -> None:
    default = build_fake(build_parser().parse_args([]))
    assert (default.auth_failure_status, default.mfa_token_ttl) == (500, 30 * 60.0)
    switched = build_fake(build_parser().parse_args(["--auth-failure-status", "401", "--mfa-token-ttl", "0"]))
    assert (switched.auth_failure_status, switched.mfa_token_ttl) == (401, 0.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--auth-failure-status", "403"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--mfa-token-ttl", "-1"])


@pytest.mark.anyio
async def test_an_expired_mfa_token_from_the_command_line(clock: FakeClock) -> None:
    """``--mfa-token-ttl 0``: every MFA token is born expired, so expiry needs no waiting."""
    fake = build_fake(build_parser().parse_args(["--auth-failure-status", "401", "--mfa-token-ttl", "0"]))
    fake.clock = clock
    transport = validating(fake)
    with pytest.raises(MfaTokenExpiredError):
        await _auth_by_hand(transport, clock, "123456")
    assert unexpected_violations(transport) == []


@pytest.fixture
def running_fake() -> Iterator[object]:
    """``python -m mfa_common.xmfa.testing ARGS`` on a free port: yields a function returning its URL."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "mfa_common.xmfa.testing", "--port", "0", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        for _ in range(200):  # the banner is a few dozen lines; bounded either way
            line = process.stdout.readline()
            if line.startswith("Listening on "):
                return line.split()[2]
            assert line, "the fake exited before listening"
        raise AssertionError("no 'Listening on' line")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("args", "status"),
    [((), 500), (("--auth-failure-status", "401"), 401)],
)
def test_the_running_command_answers_a_wrong_code_as_told(
    running_fake: object, args: tuple[str, ...], status: int
) -> None:
    url = running_fake(*args)  # type: ignore[operator]
    with httpx.Client(base_url=url, timeout=30) as raw:
        login = raw.post("/api/login", json={"username": "bob", "password": "bob-password"})
        token = login.headers["X-MFA-Token"]
        wrong = raw.post("/api/user/mfa/auth", json={"token": token, "code": "000000"})
    assert wrong.status_code == status


def test_help_lists_the_switches() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mfa_common.xmfa.testing", "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "--auth-failure-status {500,401}" in result.stdout
    assert "--mfa-token-ttl" in result.stdout


@pytest.mark.anyio
async def test_an_unauthenticated_request_is_an_empty_401_where_the_document_shows_a_body(
    clock: FakeClock,
) -> None:
    fake = XMfaFake(clock=clock)
    # The request breaks the document on purpose (no credential): only the answer is checked.
    transport = ValidatingTransport(httpx.ASGITransport(fake), SPEC, check_requests=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as raw:
        answer = await raw.get("/api/user/mfa/generate")
    assert (answer.status_code, answer.content) == (401, b"")
    # The one departure from the document, and the only violation there is.
    assert len(transport.violations) == 1 and "response 401: MissingData()" in transport.violations[0]
