"""Logins are scarce (Quatrix: about 15 per user per 15 minutes; a CAPTCHA after three failed
ones), so the tools spend them carefully: the server and every local precondition are checked
before the first login request, a mistyped code is asked again while the pending login is
alive, a CAPTCHA block says what to do and ``auth unblock-captcha`` solves it, and the budget
warning counts real logins per server and user. The fakes count every login request."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app as metalcloud_app
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.testing import generate_base32_secret
from mfa_common.totp import Totp
from quatrix_async.cli import build_app as quatrix_app
from quatrix_async.testing import QuatrixFake

from .conftest import REPO, START, AfterRequest, ScriptedPrompter, subprocess_env

PASSWORD = "admin-pass-Login-7"


def _wrong(right: str) -> str:
    return "111111" if right != "111111" else "222222"


class Quatrix:
    def __init__(self, fake: QuatrixFake, url: str, clock: FakeClock, base: dict[str, str | None]) -> None:
        self.fake, self.url, self.clock = fake, url, clock
        self.admin = fake.add_user(email="admin@acme.test", password=PASSWORD, mfa=True, admin=True)
        self.env = dict(base, QUATRIX_HOST=url, QUATRIX_EMAIL=self.admin.email)
        self.state = Path(str(base["XDG_STATE_HOME"])) / "quatrix-async"

    def code(self) -> str:
        return Totp(self.admin.totp_secret or "").code_at(self.clock.now())

    def invoke(self, args: list[str], *, prompter: Any = None, **kwargs: Any) -> Any:
        env = {**self.env, **kwargs.pop("env", {})}
        return CliRunner().invoke(quatrix_app(clock=self.clock, prompter=prompter), args, env=env, **kwargs)


@pytest.fixture
def quatrix(socket_server: Any, base_env: dict[str, str | None]) -> Quatrix:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, seed=29)
    swap.app = fake
    return Quatrix(fake, url, clock, base_env)


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# --------------------------------------------------------------------------- before any login


def test_an_unreachable_server_is_reported_before_the_password_is_asked(quatrix: Quatrix) -> None:
    url = _closed_url()
    result = quatrix.invoke(["--host", url, "auth", "login"], input="a-typed-password\n")
    assert result.exit_code == 1
    assert "Password" not in result.stderr  # never asked
    assert result.stderr.strip() == f"error: cannot reach {url} (connection refused): is the URL right?"


def test_a_url_that_is_not_the_api_is_reported_before_any_login(quatrix: Quatrix) -> None:
    result = quatrix.invoke(
        ["--host", quatrix.url + "/not-here", "auth", "login"], input="a-typed-password\n"
    )
    assert result.exit_code == 1
    assert "Password" not in result.stderr
    assert "does not answer as a Quatrix server" in result.stderr and "is the URL right?" in result.stderr
    assert quatrix.fake.counts["basic_login"] == 0


def test_mfa_enrol_without_a_terminal_is_refused_before_any_login(quatrix: Quatrix) -> None:
    # CliRunner's stdin is no terminal: nobody could scan the QR code or type the code.
    result = quatrix.invoke(["mfa", "enrol"], env={"QUATRIX_PASSWORD": PASSWORD})
    assert result.exit_code == 2
    assert "mfa enrol needs a person at a terminal" in result.stderr
    assert quatrix.fake.counts["basic_login"] == 0


def test_mfa_enrol_without_the_qr_extra_is_refused_before_any_login(
    quatrix: Quatrix, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "zxingcpp", None)  # the qr extra, not installed
    person = ScriptedPrompter({})
    result = quatrix.invoke(["mfa", "enrol"], prompter=person, env={"QUATRIX_PASSWORD": PASSWORD})
    assert result.exit_code == 2
    assert "pip install 'mfa-sdks[qr]'" in result.stderr and "--save-qr" in result.stderr
    assert quatrix.fake.counts["basic_login"] == 0 and person.asked == []


def test_no_terminal_means_no_getpass_warning(quatrix: Quatrix, tmp_path: Path) -> None:
    env = subprocess_env(
        {"XDG_CONFIG_HOME": str(tmp_path), "QUATRIX_HOST": quatrix.url, "QUATRIX_EMAIL": quatrix.admin.email}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "quatrix_async", "auth", "login"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Warning" not in proc.stderr and "getpass" not in proc.stderr.lower()
    assert "error: no value for password" in proc.stderr
    assert quatrix.fake.counts["basic_login"] == 0


# --------------------------------------------------------------------------- codes asked again


def test_a_mistyped_code_is_asked_again_without_the_password(quatrix: Quatrix) -> None:
    right = quatrix.code()
    typed = f"{PASSWORD}\n{_wrong(right)}\n{right}\n"
    result = quatrix.invoke(["auth", "login"], input=typed)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Password") == 1  # typed once
    assert result.stderr.count("Authentication code") == 2
    assert "That code was not accepted" in result.stderr
    # This server ends the pending login on a wrong code: the new password step is said and counted.
    assert "a new password step is needed" in result.stderr
    assert quatrix.fake.counts["basic_login"] == 2 and quatrix.fake.logins_of(quatrix.admin.email) == 1
    assert "admin@acme.test" in result.stdout


def test_a_code_of_the_wrong_shape_is_asked_again_and_never_sent(quatrix: Quatrix) -> None:
    right = quatrix.code()
    result = quatrix.invoke(["auth", "login"], input=f"{PASSWORD}\n12345\n{right}\n")
    assert result.exit_code == 0, result.output
    assert "That is not a code from the app" in result.stderr
    assert quatrix.fake.counts["mfa_step"] == 1 and quatrix.fake.counts["basic_login"] == 1


def test_a_configured_secret_that_is_refused_is_not_asked_again(quatrix: Quatrix) -> None:
    wrong_secret = generate_base32_secret(20)
    result = quatrix.invoke(
        ["auth", "login"], env={"QUATRIX_PASSWORD": PASSWORD, "QUATRIX_TOTP_SECRET": wrong_secret}, input=""
    )
    assert result.exit_code == 2
    assert "Authentication code" not in result.stderr
    assert f"error: {quatrix.url} did not accept the code" in result.stderr
    assert quatrix.fake.counts["basic_login"] == 1


def test_metalcloud_keeps_the_pending_login_for_the_next_code(
    socket_server: Any, base_env: dict[str, str | None]
) -> None:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = MetalCloudFake(clock=clock)
    swap.app = fake
    secret = generate_base32_secret(20)
    admin = fake.add_user("admin@metal.test", PASSWORD, access_level="admin", totp_secret=secret)
    right = Totp(secret).code_at(clock.now())
    env = dict(base_env, METALCLOUD_URL=url, METALCLOUD_EMAIL=admin.email)
    result = CliRunner().invoke(
        metalcloud_app(clock=clock),
        ["auth", "login"],
        env=env,
        input=f"{PASSWORD}\n{_wrong(right)}\n{right}\n",
    )
    assert result.exit_code == 0, result.output
    assert "That code was not accepted" in result.stderr and "password step" not in result.stderr
    assert fake.counts["password_login"] == 1 and fake.counts["login"] == 1


# --------------------------------------------------------------------------- CAPTCHA


def test_a_captcha_block_says_what_to_do_and_unblock_captcha_solves_it(quatrix: Quatrix) -> None:
    quatrix.fake.block_with_captcha(quatrix.admin.email)
    env = {"QUATRIX_PASSWORD": PASSWORD, "QUATRIX_TOTP_SECRET": quatrix.admin.totp_secret}
    blocked = quatrix.invoke(["auth", "login"], env=env)
    assert blocked.exit_code == 2
    line = blocked.stderr.strip()
    assert line.startswith(f"error: {quatrix.url} wants a CAPTCHA solved before admin@acme.test")
    assert "quatrix-async auth unblock-captcha" in line and "web browser" in line

    wrong = quatrix.invoke(["auth", "unblock-captcha"], env={**env, "QUATRIX_CAPTCHA_TOKEN": "not-the-token"})
    assert wrong.exit_code == 2
    assert "did not accept the CAPTCHA token" in wrong.stderr

    person = ScriptedPrompter({"CAPTCHA": lambda: quatrix.fake.captcha_token})
    solved = quatrix.invoke(["auth", "unblock-captcha", "--json"], env=env, prompter=person)
    assert solved.exit_code == 0, solved.output
    assert person.asked == ["Token of the solved CAPTCHA"]
    assert quatrix.fake.counts["captcha_unblocked"] == 1
    assert json.loads(solved.stdout)["user"]["email"] == quatrix.admin.email
    assert (quatrix.state / "credentials.json").exists()  # saved, as auth login does
    assert quatrix.fake.captcha_token not in solved.stdout + solved.stderr


# --------------------------------------------------------------------------- the login budget


def _seed(state: Path, logins: dict[str, list[float]]) -> None:
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    (state / "logins.json").write_text(json.dumps({"format": 2, "logins": logins}))
    (state / "logins.json").chmod(0o600)


def test_the_budget_warning_counts_logins_of_this_server_and_user_only(quatrix: Quatrix) -> None:
    now = quatrix.clock.now()
    env = {"QUATRIX_PASSWORD": PASSWORD, "QUATRIX_TOTP_SECRET": quatrix.admin.totp_secret}
    # Logins elsewhere (another server, another user here) do not count.
    _seed(
        quatrix.state,
        {
            f"https://other.example {quatrix.admin.email}": [now - 60] * 14,
            f"{quatrix.url} someone-else@acme.test": [now - 60] * 14,
            f"{quatrix.url} {quatrix.admin.email}": [now - 60] * 2,
        },
    )
    quiet = quatrix.invoke(["profile", "--json"], env=env)
    assert quiet.exit_code == 0, quiet.output
    assert "warning" not in quiet.stderr
    record = json.loads((quatrix.state / "logins.json").read_text())
    assert len(record["logins"][f"{quatrix.url} {quatrix.admin.email}"]) == 3

    _seed(quatrix.state, {f"{quatrix.url} {quatrix.admin.email}": [now - 60] * 12})
    warned = quatrix.invoke(["profile", "--json"], env=env)
    assert warned.exit_code == 0, warned.output
    assert (
        f"warning: this is login 13 of about 15 that {quatrix.url} allows admin@acme.test per 15 minutes"
        in warned.stderr
    )


def test_attempts_that_never_reach_the_server_are_not_counted(quatrix: Quatrix) -> None:
    env = {"QUATRIX_PASSWORD": PASSWORD, "QUATRIX_TOTP_SECRET": quatrix.admin.totp_secret}
    _seed(quatrix.state, {})
    refused = quatrix.invoke(["--host", _closed_url(), "profile"], env=env)
    assert refused.exit_code == 1
    no_password = quatrix.invoke(["profile"], input="")
    assert no_password.exit_code == 2
    assert json.loads((quatrix.state / "logins.json").read_text())["logins"] == {}
    wrong_password = quatrix.invoke(["profile"], env={"QUATRIX_PASSWORD": "not-the-password-1"})
    assert wrong_password.exit_code == 2  # this one reached the server: it counts, as the server counts it
    record = json.loads((quatrix.state / "logins.json").read_text())
    assert record["logins"] == {f"{quatrix.url} {quatrix.admin.email}": [quatrix.clock.now()]}


def test_a_session_the_server_drops_midway_says_to_run_again(quatrix: Quatrix, socket_server: Any) -> None:
    swap, _ = socket_server
    # The server forgets every session after the first write (a restart, a revocation).
    swap.app = AfterRequest(quatrix.fake, "/user/reset-mfa", quatrix.fake.expire_all_sessions)
    for i in range(3):
        quatrix.fake.add_user(email=f"r{i}@acme.test", password=PASSWORD, mfa=True)
    env = {"QUATRIX_PASSWORD": PASSWORD, "QUATRIX_TOTP_SECRET": quatrix.admin.totp_secret}
    result = quatrix.invoke(["mfa", "reset", "--all", "--yes", "--concurrency", "1"], env=env)
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: {quatrix.url} no longer accepts this command's session (unused for too long, or "
        "ended elsewhere): run the command again"
    )
    assert quatrix.fake.counts["basic_login"] == 1  # no login behind the person's back


def test_a_spent_login_budget_says_when_to_try_and_what_saves_logins(quatrix: Quatrix) -> None:
    quatrix.fake.login_budget = 0  # every login refused: 429 with Retry-After
    env = {"QUATRIX_PASSWORD": PASSWORD, "QUATRIX_TOTP_SECRET": quatrix.admin.totp_secret}
    result = quatrix.invoke(["profile"], env=env)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith(f"error: {quatrix.url} refuses more logins of admin@acme.test for now")
    assert "try again in 900 s" in line and "quatrix-async auth login  once" in line
    said = line.replace(quatrix.url, "<url>")  # a port may hold the digits 429
    assert "RateLimitError" not in said and "429" not in said
