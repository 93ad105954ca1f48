"""What users of gh and aws expect: --version, --debug (and MFA_SDKS_DEBUG=1), completion,
global options anywhere, choices in any case, no type after flags in the help, messages in the
words of the command line, saved credentials that only their owner can read."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from metalcloud_async.cli import build_app as metalcloud_app
from mfa_common.batch import BatchProgress
from mfa_common.cli import BatchProgressDisplay, CredentialStore, SavedCredential, describe_error
from mfa_common.clock import FakeClock
from mfa_common.errors import AccountLockedError, InsecureTransportError, StateFileError
from mfa_common.secret import Secret
from quatrix_async.cli import build_app as quatrix_app
from quatrix_async.testing import QuatrixFake

from .conftest import START, finish, start, subprocess_env

PASSWORD = "admin-pass-Quatrix-1"


@pytest.fixture
def quatrix(socket_server: Any, base_env: dict[str, str | None]) -> Any:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, seed=21)
    swap.app = fake
    admin = fake.add_user(email="admin@acme.test", password=PASSWORD, mfa=True, admin=True)
    env = dict(
        base_env, QUATRIX_EMAIL=admin.email, QUATRIX_PASSWORD=PASSWORD, QUATRIX_TOTP_SECRET=admin.totp_secret
    )
    return fake, clock, url, env, admin


def test_version() -> None:
    result = CliRunner().invoke(quatrix_app(), ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("quatrix-async ")
    result = CliRunner().invoke(metalcloud_app(), ["users", "--version"])  # anywhere on the line
    assert result.exit_code == 0 and result.stdout.startswith("metalcloud-async ")


def test_global_options_after_the_subcommand(quatrix: Any, tmp_path: Path) -> None:
    _, clock, url, env, admin = quatrix
    result = CliRunner().invoke(quatrix_app(clock=clock), ["profile", "--json", "--host", url], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["email"] == admin.email

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"quatrix": {"host": url}}))
    config.chmod(0o600)
    args = ["mfa", "reset", "--all", "--dry-run", "--config", str(config), "--json"]
    result = CliRunner().invoke(quatrix_app(clock=clock), args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dry_run"] is True


def test_choices_ignore_case(quatrix: Any) -> None:
    fake, clock, url, env, _ = quatrix
    fake.add_user(email="p@acme.test", password="user-pass-2", pin="13579")
    for spelling in ("pin", "Pin", "PIN"):
        args = ["--host", url, "mfa", "remove", "--all", "--auth-type", spelling, "--dry-run", "--json"]
        result = CliRunner().invoke(quatrix_app(clock=clock), args, env=env)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["action"] == "remove PIN"


def _commands(group: Any, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, command in getattr(group, "commands", {}).items():
        found += _commands(command, [*path, name])
    return found


@pytest.mark.parametrize("build", [quatrix_app, metalcloud_app])
def test_help_shows_no_type_after_flags(build: Any) -> None:
    app = build()
    root = typer.main.get_command(app)
    paths = _commands(root, [])
    assert ["apply"] in paths and ["auth", "login"] in paths and ["login"] in paths
    for path in paths:
        result = CliRunner().invoke(build(), [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout, path


def test_completion_script_and_completions() -> None:
    # The shell is named through the completion variable, as the installed script does:
    # ``--show-completion`` guesses the shell from the parent processes, which a test runner
    # does not always have.
    script = finish(start(["quatrix_async"], subprocess_env({"_QUATRIX_ASYNC_COMPLETE": "source_bash"})))
    assert script.returncode == 0, script.stderr
    assert "complete" in script.stdout and "COMP_WORDS" in script.stdout
    words = {"COMP_WORDS": "quatrix-async au", "COMP_CWORD": "1", "_TYPER_COMPLETE_ARGS": "quatrix-async au"}
    completed = finish(
        start(["quatrix_async"], subprocess_env({"_QUATRIX_ASYNC_COMPLETE": "complete_bash", **words}))
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["auth"]


def test_debug_log_is_redacted_from_the_flag_or_the_environment(quatrix: Any, tmp_path: Path) -> None:
    fake, _, url, env, _ = quatrix
    # A PIN login: the subprocess runs on the real clock, the fake on a FakeClock.
    admin = fake.add_user(email="pinadmin@acme.test", password=PASSWORD, pin="97531", admin=True)
    base = {k: v for k, v in env.items() if v is not None and k != "QUATRIX_TOTP_SECRET"}
    base.update(
        QUATRIX_HOST=url,
        QUATRIX_EMAIL=admin.email,
        QUATRIX_PIN="97531",
        XDG_STATE_HOME=str(tmp_path / "s"),
        XDG_CONFIG_HOME=str(tmp_path / "c"),
    )
    by_flag = start(["quatrix_async", "profile", "--json", "--debug"], subprocess_env(base))
    by_env = start(["quatrix_async", "profile", "--json"], subprocess_env({**base, "MFA_SDKS_DEBUG": "1"}))
    for result in (finish(by_flag), finish(by_env)):
        assert result.returncode == 0, result.stderr
        assert "debug: mfa_common: GET" in result.stderr and "/profile -> 200" in result.stderr
        for secret in [PASSWORD, "97531", *fake._sessions]:
            assert secret not in result.stderr
    quiet = finish(start(["quatrix_async", "profile", "--json"], subprocess_env(base)))
    assert "debug:" not in quiet.stderr


def test_insecure_http_message_names_the_flag(base_env: dict[str, str | None]) -> None:
    env = dict(
        base_env,
        QUATRIX_HOST="http://quatrix.example.invalid",
        QUATRIX_EMAIL="a@b.test",
        QUATRIX_PASSWORD="x-pass-1",
    )
    result = CliRunner().invoke(quatrix_app(), ["profile"], env=env)
    assert result.exit_code == 2
    assert "--allow-insecure-http" in result.stderr and "allow_insecure_http=True" not in result.stderr


def test_lockout_message_shows_the_unlock_time() -> None:
    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    text = describe_error(
        AccountLockedError("POST /api/login -> 429", locked_until=until, status_code=429),
        server="https://acme.example",
    )
    local = until.astimezone()
    assert (
        f"https://acme.example has locked this account after failed logins until {local:%Y-%m-%d %H:%M:%S}"
        in text
    )
    assert "AccountLockedError" not in text and "/api/login" not in text
    insecure = describe_error(InsecureTransportError("refusing; or pass allow_insecure_http=True if trusted"))
    assert "--allow-insecure-http" in insecure and "allow_insecure_http=True" not in insecure


def test_progress_bar_splits_unknown_from_failed() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False)
    with BatchProgressDisplay("reset 2FA", total=10, console=console) as bar:
        bar(
            BatchProgress(
                done=5, failed=1, skipped=2, unknown=2, in_flight=0, seen=10, elapsed=1.0, rate=10.0
            )
        )
    text = buffer.getvalue()
    assert "failed 1" in text and "unknown 2" in text


class MemoryKeyring:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, user: str, value: str) -> None:
        self.items[(service, user)] = value

    def get_password(self, service: str, user: str) -> str | None:
        return self.items.get((service, user))

    def delete_password(self, service: str, user: str) -> None:
        del self.items[(service, user)]


def _credential(url: str, **kw: Any) -> SavedCredential:
    return SavedCredential(
        url=url, kind="session", user="a@b.test", secret=Secret("sess-123456"), created_at=0.0, **kw
    )


def test_credentials_file_is_owner_only_and_sessions_expire(tmp_path: Path) -> None:
    store = CredentialStore("tool", tmp_path / "state")
    store.put(_credential("https://a.test", expires_at=100.0, idle_timeout=50.0))
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert (store.directory.stat().st_mode & 0o777) == 0o700
    saved = store.get("https://a.test", now=10.0)
    assert saved is not None and saved.secret.reveal() == "sess-123456"
    assert "sess-123456" not in repr(saved)
    assert saved.used_at(90.0).expires_at == 140.0  # an idle timeout starts again at each use
    assert store.get("https://a.test", now=100.0) is None  # expired: forgotten
    assert store.urls() == []

    store.put(_credential("https://b.test"))
    store.path.chmod(0o644)
    with pytest.raises(StateFileError, match="open to other users: remove it and run auth login again"):
        store.get("https://b.test", now=0.0)


def test_credentials_in_the_keyring_keep_no_secret_in_the_file(tmp_path: Path) -> None:
    keyring = MemoryKeyring()
    store = CredentialStore("tool", tmp_path / "state", keyring=keyring)
    store.put(_credential("https://a.test"))
    assert "sess-123456" not in store.path.read_text()
    assert keyring.items == {("tool", "https://a.test"): "sess-123456"}
    saved = store.get("https://a.test", now=0.0)
    assert saved is not None and saved.secret.reveal() == "sess-123456"
    assert store.remove("https://a.test") and keyring.items == {}


@pytest.mark.parametrize("url", ["not a url", "ftp://files.example.com", "https://bad host.example"])
def test_a_bad_server_url_is_a_usage_error(url: str, base_env: dict[str, str | None]) -> None:
    env = dict(base_env, QUATRIX_EMAIL="a@b.test", QUATRIX_PASSWORD="x-pass-1")
    result = CliRunner().invoke(quatrix_app(), ["--host", url, "profile"], env=env)
    assert result.exit_code == 2
    assert "is not a server URL" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("build", [quatrix_app, metalcloud_app])
@pytest.mark.parametrize("option", ["--api-key", "--password", "--totp-secret", "--pin"])
def test_no_credential_is_taken_from_argv(build: Any, option: str, base_env: dict[str, str | None]) -> None:
    for args in (["auth", "login", option, "s3cret-value"], [option, "s3cret-value", "auth", "login"]):
        result = CliRunner().invoke(build(), args, env=base_env)
        assert result.exit_code == 2 and "No such option" in result.output
