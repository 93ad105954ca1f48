"""A code typed late must not break the login: prompts never run on the event loop.

The server closes idle keep-alive connections after 1 s here. The prompt answers only once the
server has closed the connection the password step used (an event observed on the server, not a
sleep). A prompt blocking the event loop leaves the client unaware of the close, and its MFA
step then fails on the dead socket; a prompt in a worker thread lets the client drop it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app as metalcloud_app
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.testing import SwappableApp, generate_base32_secret, serve
from mfa_common.totp import Totp
from quatrix_async.cli import build_app as quatrix_app
from quatrix_async.testing import QuatrixFake

from .conftest import ScriptedPrompter

KEEP_ALIVE = 1
WAIT_LIMIT = 30.0  # bound on waiting for the server to close the idle connection


@pytest.fixture(scope="module")
def short_keepalive() -> Iterator[tuple[SwappableApp, Any]]:
    swap = SwappableApp()
    with serve(swap) as handle:
        # Read by uvicorn for every new connection.
        handle.server.config.timeout_keep_alive = KEEP_ALIVE
        yield swap, handle


def _after_idle_close(handle: Any, produce: Callable[[], str], seen: list[int]) -> Callable[[], str]:
    """An answer given only after the server closed every connection (the idle keep-alive one)."""

    def answer() -> str:
        connections = handle.server.server_state.connections
        seen.append(len(connections))
        deadline = time.monotonic() + WAIT_LIMIT
        while connections and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for a condition on the server, bounded
        assert not connections, "the server did not close the idle connection"
        return produce()

    return answer


def test_quatrix_login_survives_a_code_typed_after_keepalive(
    short_keepalive: tuple[SwappableApp, Any], tmp_path: Any
) -> None:
    swap, handle = short_keepalive
    clock = FakeClock(1_700_000_000.0)
    fake = QuatrixFake(clock=clock, seed=3)
    swap.app = fake
    user = fake.add_user(email="late@acme.test", password="late-pass-Quatrix-1", mfa=True, admin=True)
    seen: list[int] = []
    code = _after_idle_close(handle, lambda: Totp(user.totp_secret or "").code_at(clock.now()), seen)
    prompter = ScriptedPrompter({"Authentication code": code})
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "MFA_SDKS_KEYRING": "0",
        "QUATRIX_HOST": handle.base_url,
        "QUATRIX_EMAIL": user.email,
        "QUATRIX_PASSWORD": "late-pass-Quatrix-1",
        "QUATRIX_TOTP_SECRET": None,
        "QUATRIX_PIN": None,
    }
    result = CliRunner().invoke(quatrix_app(clock=clock, prompter=prompter), ["auth", "login"], env=env)
    assert prompter.asked == ["Authentication code"]
    assert seen and seen[0] >= 1  # the password step's connection was open when the prompt began
    assert result.exit_code == 0, result.output
    assert "late@acme.test" in result.stdout


def test_metalcloud_login_survives_a_code_typed_after_keepalive(
    short_keepalive: tuple[SwappableApp, Any], tmp_path: Any
) -> None:
    swap, handle = short_keepalive
    clock = FakeClock(1_700_000_000.0)
    fake = MetalCloudFake(clock=clock)
    swap.app = fake
    secret = generate_base32_secret(20)
    fake.add_user("late@metal.test", "late-pass-Metal-1", access_level="admin", totp_secret=secret)
    seen: list[int] = []
    code = _after_idle_close(handle, lambda: Totp(secret).code_at(clock.now()), seen)
    prompter = ScriptedPrompter({"Authentication code": code})
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "MFA_SDKS_KEYRING": "0",
        "METALCLOUD_URL": handle.base_url,
        "METALCLOUD_EMAIL": "late@metal.test",
        "METALCLOUD_PASSWORD": "late-pass-Metal-1",
        "METALCLOUD_TOTP_SECRET": None,
        "METALCLOUD_API_KEY": None,
    }
    result = CliRunner().invoke(metalcloud_app(clock=clock, prompter=prompter), ["auth", "login"], env=env)
    assert prompter.asked == ["Authentication code"]
    assert seen and seen[0] >= 1
    assert result.exit_code == 0, result.output
    assert "late@metal.test" in result.stdout
