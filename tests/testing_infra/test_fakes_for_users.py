"""The fakes as users meet them in their own tests: ``serve()`` with ``with`` or ``async with``,
``QuatrixFake().add_account(...)``, and the ``python -m <package>.testing`` commands (complete
``--help``, one clear line and exit 2 on a busy port)."""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.testing import serve
from quatrix_async import MfaCodeRejectedError, QuatrixClient
from quatrix_async.testing import QuatrixFake

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["mfa_common.testing", "quatrix_async.testing", "metalcloud_async.testing"]
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX7"


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(5)
        return probe.connect_ex(("127.0.0.1", port)) != 0


# --------------------------------------------------------------------------- serve()


@pytest.mark.anyio
async def test_serve_works_with_async_with_and_stops_on_exit() -> None:
    fake = QuatrixFake(clock=FakeClock())
    fake.add_account("ops@example.com", "ops-password", admin=True)
    async with serve(fake) as server:
        async with QuatrixClient(server.base_url, email="ops@example.com", password="ops-password") as client:
            me = await client.profile.get()
        assert me.email == "ops@example.com"
        port = server.port
        assert server.thread.is_alive()
    assert not server.thread.is_alive()
    assert _refused(port)


@pytest.mark.anyio
async def test_the_event_loop_runs_other_tasks_while_the_server_starts() -> None:
    """Entering ``async with serve()`` waits in a worker thread, not on the loop: a task
    started before it gets to run before the server is up."""
    ran: list[str] = []

    async def other() -> None:
        ran.append("other task")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        async with serve(QuatrixFake()) as server:
            ran.append("server up")
            assert server.port > 0
    assert ran == ["other task", "server up"]


def test_serve_still_works_as_a_plain_with_block() -> None:
    fake = QuatrixFake()
    fake.add_account("ops@example.com", "ops-password")
    with serve(fake) as server:
        response = httpx.get(server.url("/api/1.0/session/login"), auth=("ops@example.com", "ops-password"))
        assert response.status_code == 200
    assert _refused(server.port)


def test_one_serve_object_runs_one_server_at_a_time() -> None:
    running = serve(QuatrixFake())
    with running, pytest.raises(RuntimeError, match="already running"):
        running.__enter__()
    with running as again:  # usable again once stopped
        assert again.port > 0


# --------------------------------------------------------------------------- QuatrixFake.add_account


@pytest.mark.anyio
async def test_add_account_makes_accounts_that_log_in_with_their_factor() -> None:
    clock = FakeClock()
    fake = QuatrixFake(clock=clock)
    ops = fake.add_account("ops@example.com", "ops-password", totp_secret=SECRET, admin=True, name="Ops")
    bob = fake.add_account("bob@example.com", "bob-password", pin="12345")
    plain = fake.add_account("carol@example.com", "carol-password")
    assert (ops.mfa, bob.mfa, plain.mfa) == ("2fa", "pin", "none")
    transport = httpx.ASGITransport(fake)
    async with QuatrixClient(
        "http://127.0.0.1:9",
        email="ops@example.com",
        password="ops-password",
        totp_secret=SECRET,
        clock=clock,
        transport=transport,
    ) as client:
        assert len(await client.users.list()) == 3  # admin=True may list users
    async with QuatrixClient(
        "http://127.0.0.1:9",
        email="bob@example.com",
        password="bob-password",
        pin="12345",
        transport=transport,
    ) as client:
        assert (await client.profile.get()).email == "bob@example.com"
    async with QuatrixClient(
        "http://127.0.0.1:9",
        email="bob@example.com",
        password="bob-password",
        pin="54321",
        transport=transport,
    ) as client:
        with pytest.raises(MfaCodeRejectedError):
            await client.profile.get()
    assert fake.stats["mfa_step"] >= 2


def test_add_account_refuses_two_factors_and_a_duplicate() -> None:
    fake = QuatrixFake()
    with pytest.raises(ValueError, match="not both"):
        fake.add_account("x@example.com", "pw", totp_secret=SECRET, pin="12345")
    fake.add_account("x@example.com", "pw")
    with pytest.raises(ValueError, match="exists"):
        fake.add_account("X@example.com", "pw")


# --------------------------------------------------------------------------- python -m <pkg>.testing


@pytest.mark.parametrize("module", MODULES)
def test_every_option_of_the_command_is_explained(module: str) -> None:
    parser: argparse.ArgumentParser = importlib.import_module(f"{module}.__main__").build_parser()
    assert parser.prog == f"python -m {module}"
    for action in parser._actions:
        assert action.help, f"{module}: {action.option_strings} has no help text"
    text = parser.format_help()
    assert "examples:" in text
    assert f"python -m {module} --port" in text
    assert "--accounts FILE" in text  # the accounts file format is described
    assert "``" not in text  # plain text, not reStructuredText


def _run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("module", MODULES)
def test_a_busy_port_gives_one_clear_line_and_exit_2(module: str, busy_port: int) -> None:
    result = _run_module(module, "--port", str(busy_port))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"python -m {module}: port {busy_port} on 127.0.0.1 is already in use;"
        " pick another with --port (0: any free one)"
    ]
    assert "Listening" not in result.stdout


def test_a_non_loopback_host_is_one_line_too() -> None:
    result = _run_module("quatrix_async.testing", "--host", "192.0.2.1", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m quatrix_async.testing: refusing to listen on 192.0.2.1: not a loopback address"
        " (the fake is for local tests)"
    ]
