"""Fixtures for the command-line tests: the fakes on real loopback sockets, a shared FakeClock,
and helpers that check no secret reaches the terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mfa_common.cli import Prompter
from mfa_common.clock import FakeClock
from mfa_common.testing import SwappableApp, serve

REPO = Path(__file__).resolve().parents[2]
START = 1_700_000_000.0


@pytest.fixture(scope="session")
def socket_server() -> Iterator[tuple[SwappableApp, str]]:
    swap = SwappableApp()
    with serve(swap) as handle:
        yield swap, handle.base_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str | None]:
    """No stray configuration from the machine running the tests (None: unset in CliRunner)."""
    env: dict[str, str | None] = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "MFA_SDKS_KEYRING": "0",
        "MFA_SDKS_DEBUG": None,
    }
    for name in os.environ:
        if name.startswith(("QUATRIX_", "METALCLOUD_")):
            env[name] = None
    return env


class ScriptedPrompter(Prompter):
    """Answers prompts whose text contains a key with a function computed at prompt time (a TOTP
    code for a secret the server generates during the command); other prompts go to stdin."""

    def __init__(self, answers: dict[str, Callable[[], str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def interactive(self) -> bool:
        return True  # a person who answers (the scripted answers stand for one)

    def ask(self, text: str, *, hide: bool, hint: str = "") -> str:
        self.asked.append(text)
        for key, produce in self.answers.items():
            if key in text:
                return produce()
        return super().ask(text, hide=hide, hint=hint)


class AfterRequest:
    """An ASGI wrapper that runs ``action()`` after each request to a path ending in ``suffix``:
    the server's state changes between two requests of a command (a revocation, a demotion)."""

    def __init__(self, app: Any, suffix: str, action: Callable[[], None]) -> None:
        self.app, self.suffix, self.action = app, suffix, action

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["path"].endswith(self.suffix):
            self.action()


def assert_no_secrets(result: Result, *secrets: str | None) -> None:
    """None of ``secrets`` appears on stdout or stderr (nor in the exception, if any)."""
    streams = {"stdout": result.stdout, "stderr": result.stderr}
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        streams["exception"] = repr(result.exception)
    for secret in secrets:
        if not secret:
            continue
        for name, text in streams.items():
            assert secret not in text, f"a secret appeared on {name}"


def subprocess_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUATRIX_", "METALCLOUD_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "160"
    env["MFA_SDKS_KEYRING"] = "0"
    # A tool that hangs is ended with SIGABRT (see finish): its threads' stacks go to stderr.
    env["PYTHONFAULTHANDLER"] = "1"
    env.pop("MFA_SDKS_DEBUG", None)
    env.update(extra)
    # Saved sessions, login counts and automatic journals never land in the real home directory.
    if "XDG_STATE_HOME" not in extra:
        base = extra.get("XDG_CONFIG_HOME") or tempfile.mkdtemp(prefix="mfa-cli-state-")
        env["XDG_STATE_HOME"] = os.path.join(base, "state")
    return env


PYTHON = sys.executable


# ``python -m MODULE ARGS`` with Ctrl-C delivered as a terminal delivers it to its foreground
# job: a test run started in the background (``pytest &`` from a script) ignores SIGINT, and
# every process it starts inherits that.
_AS_FOREGROUND_JOB = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "del sys.argv[0]; runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


def start(args: list[str], env: dict[str, str], *, as_foreground_job: bool = False) -> subprocess.Popen[str]:
    """Start ``python -m ...`` from the repository (several run at once to save time);
    ``as_foreground_job``: with Ctrl-C (SIGINT) handled whatever this process does with it."""
    launch = ["-c", _AS_FOREGROUND_JOB] if as_foreground_job else ["-m"]
    return subprocess.Popen(
        [PYTHON, *launch, *args],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a tool (bounded). One still running after a minute is hung: it is aborted, so
    that the failure shows where each of its threads was (faulthandler), then killed."""
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
