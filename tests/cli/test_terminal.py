"""Where the terminal matters: confirmation before a bulk destructive action (inside a pty, and
refused without one), whole lines when stderr is a pipe, and Ctrl-C in the middle of a batch."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from quatrix_async.testing import QuatrixFake

from .conftest import PYTHON, REPO, START, finish, start, subprocess_env

TIMEOUT = 60.0


def run_in_pty(args: list[str], env: dict[str, str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run ``python -m args`` with stdin, stdout and stderr on a pseudo-terminal; when the output
    shows each ``(expected, reply)``'s text, type the reply. Bounded by TIMEOUT."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [PYTHON, "-m", *args], env=env, cwd=REPO, stdin=slave, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if pending and pending[0][0].encode() in output:
                    os.write(master, pending.pop(0)[1].encode())
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, output.decode(errors="replace")


@pytest.fixture
def metal(socket_server: Any, tmp_path: Path) -> tuple[MetalCloudFake, dict[str, str]]:
    swap, url = socket_server
    fake = MetalCloudFake(clock=FakeClock(START))
    swap.app = fake
    admin = fake.add_user("admin@metal.test", "admin-pass-Metal-1", access_level="admin")
    for i in range(3):
        fake.add_user(f"plain{i}@metal.test", "user-pass-Metal-2")
    env = subprocess_env(
        {
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "MFA_SDKS_KEYRING": "0",
            "METALCLOUD_URL": url,
            "METALCLOUD_API_KEY": admin.api_key or "",
        }
    )
    return fake, env


def test_confirmation_shows_the_count_and_no_stops_everything(
    metal: tuple[MetalCloudFake, dict[str, str]],
) -> None:
    fake, env = metal
    code, output = run_in_pty(
        ["metalcloud_async", "users", "suspend-without-2fa"], env, [("Continue?", "n\r")]
    )
    assert code == 2, output
    assert "This will suspend users without 2FA for 3 users" in output
    assert "cancelled: nothing was changed" in output
    assert fake.ledger.keys("suspend") == set()

    code, output = run_in_pty(
        ["metalcloud_async", "users", "suspend-without-2fa"], env, [("Continue?", "y\r")]
    )
    assert code == 0, output
    assert len(fake.ledger.keys("suspend")) == 3


def test_no_terminal_refuses_without_yes_in_one_unwrapped_line(
    metal: tuple[MetalCloudFake, dict[str, str]],
) -> None:
    fake, env = metal
    result = finish(start(["metalcloud_async", "users", "suspend-without-2fa"], {**env, "COLUMNS": "40"}))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "for 3 users" in lines[0] and "pass --yes to proceed" in lines[0]  # not wrapped at 40
    assert fake.ledger.keys("suspend") == set()

    result = finish(start(["metalcloud_async", "users", "suspend-without-2fa", "--yes", "--json"], env))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["done"] == 3


def _signal_dispositions(pid: int) -> str:
    """The process's signal masks as Linux shows them (for a failure message)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return " ".join(
                line.strip() for line in status if line.startswith(("SigBlk", "SigIgn", "SigCgt"))
            )
    except OSError:
        return "(no /proc)"


async def _read_whole(receive: Any) -> Any:
    """Read a request's body now; return a ``receive`` that hands it over in one message, then
    reads on from the connection."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replay() -> Any:
        return pending.pop() if pending else await receive()

    return replay


class Gate:
    """ASGI middleware: from the ``after``-th request on ``suffix`` on, read it whole, hold it
    until released (bounded), and tell when the held one has been applied.

    The body is read before the hold: the server has the whole write when the client gives up,
    and a client gone by the time the app reads would otherwise lose it (uvicorn answers every
    read after a disconnect with ``http.disconnect``)."""

    def __init__(self, app: Any, suffix: str, after: int) -> None:
        self.app = app
        self.suffix = suffix
        self.after = after
        self.count = 0
        self.reached = threading.Event()
        self.release = threading.Event()
        self.applied = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        held = False
        if scope["type"] == "http" and scope["path"].endswith(self.suffix):
            self.count += 1
            if self.count >= self.after:
                held = True
                receive = await _read_whole(receive)
                self.reached.set()
                deadline = time.monotonic() + TIMEOUT
                while not self.release.is_set() and time.monotonic() < deadline:
                    await anyio.sleep(0.01)
        await self.app(scope, receive, send)
        if held:
            self.applied.set()


def test_ctrl_c_prints_the_summary_so_far_and_the_resume_command(socket_server: Any, tmp_path: Path) -> None:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, seed=5)
    admin = fake.add_user(email="admin@acme.test", password="admin-pass-Quatrix-1", pin="97531", admin=True)
    users = [
        fake.add_user(email=f"u{i}@acme.test", password="user-pass-Quatrix-2", mfa=True) for i in range(5)
    ]
    gate = Gate(fake, "/user/reset-mfa", after=3)
    swap.app = gate
    journal = tmp_path / "reset.journal"
    env = subprocess_env(
        {
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "MFA_SDKS_KEYRING": "0",
            "QUATRIX_HOST": url,
            "QUATRIX_EMAIL": admin.email,
            "QUATRIX_PASSWORD": "admin-pass-Quatrix-1",
            "QUATRIX_PIN": "97531",
        }
    )
    args = ["mfa", "reset", "--all", "--yes", "--concurrency", "1", "--journal", str(journal)]
    try:
        proc = start(["quatrix_async", *args], env, as_foreground_job=True)
        assert gate.reached.wait(TIMEOUT), "the batch never reached the third reset"
        clock.advance(1)  # time passes on the server: the held reset moves the user's modified time
        signals = _signal_dispositions(proc.pid)
        proc.send_signal(signal.SIGINT)
        result = finish(proc)
    finally:
        gate.release.set()
    assert gate.applied.wait(TIMEOUT)  # the held reset was applied after the client gave up on it
    assert result.returncode == 130, f"{signals}\n{result.stderr}"
    assert (
        "Interrupted: 2 done, 0 failed, 0 unknown, 0 skipped of 5; a write cut off is checked on resume"
        in result.stderr
    )
    resume = f"quatrix-async {' '.join(args)}"
    assert f"Resume with:  {resume}" in result.stderr
    assert "Traceback" not in result.stderr

    swap.app = fake
    again = finish(start(["quatrix_async", *args, "--json"], env))
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    # The interrupted one is verified (its modified time moved on), not repeated.
    assert summary["done"] == 3
    assert summary["skipped_by_reason"] == {
        "already done (journal)": 2,
        "own account (use the profile commands)": 1,
    }
    assert fake.ledger.keys("user.reset-mfa") == {u.id for u in users}
    assert fake.ledger.duplicates("user.reset-mfa") == {}
