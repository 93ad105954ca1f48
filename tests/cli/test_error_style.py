"""Errors come in one style: ``error:`` and a short sentence that names the server and the next
step, never an exception's class name or a raw HTTP line; ``--debug`` adds those on a second
line. Usage errors (an unknown command or option) look the same."""

from __future__ import annotations

import itertools
import socket
import ssl
from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app as metalcloud_app
from metalcloud_async.testing import MetalCloudFake
from mfa_common.cli import describe_error
from mfa_common.clock import FakeClock
from mfa_common.errors import APIConnectionError, APITimeoutError, ServerError
from quatrix_async.cli import build_app as quatrix_app
from quatrix_async.testing import QuatrixFake

from .conftest import START, AfterRequest

PASSWORD = "user-pass-Quatrix-9"
CLASS_NAMES = ("Error:", "Error ", "APIConnectionError", "PermissionDenied", "->", "Traceback", "╭")


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for name in CLASS_NAMES:
        assert name not in lines[0], (name, stderr)
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: a connection to it is refused


@pytest.mark.parametrize("build", [quatrix_app, metalcloud_app])
def test_an_unknown_command_is_one_line_naming_the_help(build: Any) -> None:
    result = CliRunner().invoke(build(), ["no-such-command"])
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert "No such command 'no-such-command'" in line and "--help" in line
    result = CliRunner().invoke(build(), ["auth", "login", "--no-such-option"])
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert "--no-such-option" in line and "auth login --help" in line


@pytest.mark.parametrize(
    ("build", "env"),
    [
        (quatrix_app, {"QUATRIX_EMAIL": "a@b.test", "QUATRIX_PASSWORD": PASSWORD}),
        (metalcloud_app, {"METALCLOUD_EMAIL": "a@b.test", "METALCLOUD_PASSWORD": PASSWORD}),
    ],
)
def test_a_server_that_does_not_answer(
    build: Any, env: dict[str, str], base_env: dict[str, str | None]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    option = "--host" if build is quatrix_app else "--url"
    result = CliRunner().invoke(build(), [option, url, "auth", "login"], env={**base_env, **env})
    assert result.exit_code == 1
    assert _one_line(result.stderr) == f"error: cannot reach {url} (connection refused): is the URL right?"

    debug = CliRunner().invoke(build(), [option, url, "auth", "login", "--debug"], env={**base_env, **env})
    details = [line for line in debug.stderr.splitlines() if line.startswith("debug: APIConnectionError")]
    assert details and "ConnectionRefusedError" in details[0]


def test_a_refusal_says_an_administrator_is_needed(
    socket_server: Any, base_env: dict[str, str | None]
) -> None:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, seed=3)
    swap.app = fake
    user = fake.add_user(email="user@acme.test", password=PASSWORD, pin="24680")
    env = dict(
        base_env, QUATRIX_HOST=url, QUATRIX_EMAIL=user.email, QUATRIX_PASSWORD=PASSWORD, QUATRIX_PIN="24680"
    )
    result = CliRunner().invoke(quatrix_app(clock=clock), ["mfa", "reset", "--all", "--dry-run"], env=env)
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert line.startswith(f"error: {url} refused") and line.endswith("this needs an administrator")


def test_a_batch_stopped_by_a_refusal_says_so_in_the_same_style(
    socket_server: Any, base_env: dict[str, str | None]
) -> None:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = MetalCloudFake(clock=clock)
    swap.app = fake
    fake.add_user("admin@metal.test", "admin-pass-Metal-1", access_level="admin")
    user = fake.add_user("plain@metal.test", PASSWORD)
    env = dict(base_env, METALCLOUD_URL=url, METALCLOUD_API_KEY=user.api_key)
    result = CliRunner().invoke(metalcloud_app(clock=clock), ["users", "without-2fa"], env=env)
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert line.startswith(f"error: {url} refused") and line.endswith("this needs an administrator")


def _chain(*errors: BaseException) -> BaseException:
    for outer, inner in itertools.pairwise(errors):
        outer.__cause__ = inner
    return errors[0]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            _chain(
                APIConnectionError("GET https://nowhere.example/x: ConnectError"),
                socket.gaierror(-2, "Name or service not known"),
            ),
            "cannot find nowhere.example (the name does not resolve): is the URL right?",
        ),
        (
            _chain(
                APIConnectionError("GET https://nowhere.example/x: ConnectError"),
                ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate"),
            ),
            "cannot verify the TLS certificate of https://nowhere.example: if it is self-signed or "
            "from a private CA, point SSL_CERT_FILE at that CA's certificate",
        ),
        (
            _chain(
                APIConnectionError("GET https://nowhere.example/x: ConnectError"),
                ssl.SSLError(1, "wrong version number"),
            ),
            "the TLS handshake with https://nowhere.example failed: does the server speak https? (else use http://)",
        ),
        (
            APITimeoutError("GET https://nowhere.example/x: ReadTimeout"),
            "https://nowhere.example did not answer in time: is the URL right, and is the server up?",
        ),
        (
            ServerError("GET https://nowhere.example/x -> 503", status_code=503),
            "https://nowhere.example failed (HTTP 503): try again later",
        ),
        (KeyError("a-password-in-a-key"), "unexpected error; run again with --debug to see its type"),
    ],
)
def test_dns_tls_and_other_failures_read_as_sentences(error: BaseException, expected: str) -> None:
    assert describe_error(error, server="https://nowhere.example") == expected


def test_a_batch_stopped_midway_by_a_refusal_ends_with_the_same_line(
    socket_server: Any, base_env: dict[str, str | None]
) -> None:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, seed=8)
    admin = fake.add_user(email="admin@acme.test", password=PASSWORD, pin="13579", admin=True)
    for i in range(5):
        fake.add_user(email=f"r{i}@acme.test", password=PASSWORD, mfa=True)
    swap.app = AfterRequest(fake, "/user/reset-mfa", lambda: setattr(admin, "admin", False))
    env = dict(
        base_env, QUATRIX_HOST=url, QUATRIX_EMAIL=admin.email, QUATRIX_PASSWORD=PASSWORD, QUATRIX_PIN="13579"
    )
    args = ["mfa", "reset", "--all", "--yes", "--concurrency", "1"]
    result = CliRunner().invoke(quatrix_app(clock=clock), args, env=env)
    assert result.exit_code == 2, result.output
    assert "done" in result.stdout  # the summary of what was done before the refusal
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error: {url} refused (Action is not allowed): this needs an administrator"
    assert len(fake.ledger.keys("user.reset-mfa")) == 1
