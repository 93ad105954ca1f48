"""``quatrix-async`` driven as a user would: CliRunner with environment variables (and one real
subprocess), against the Quatrix fake on a loopback socket."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mfa_common.clock import FakeClock
from mfa_common.totp import Totp
from quatrix_async.cli import build_app
from quatrix_async.testing import FakeUser, QuatrixFake

from .conftest import ScriptedPrompter, assert_no_secrets, finish, start, subprocess_env

ADMIN_PASSWORD = "admin-pass-Quatrix-1"
USER_PASSWORD = "user-pass-Quatrix-2"
NEW_PIN = "864213"


class World:
    """The fake, its admin, a few users, the server URL, and every session id handed out."""

    def __init__(self, fake: QuatrixFake, url: str, clock: FakeClock) -> None:
        self.fake = fake
        self.url = url
        self.clock = clock
        self.admin = fake.add_user(email="admin@acme.test", password=ADMIN_PASSWORD, mfa=True, admin=True)
        self.users: list[FakeUser] = [
            fake.add_user(email=f"user{i}@acme.test", password=USER_PASSWORD, mfa=i % 2 == 0)
            for i in range(6)
        ]
        self.session_ids: list[str] = []
        original = fake._new_session

        def record(user: Any, state: Any) -> Any:
            session = original(user, state)
            self.session_ids.append(session.id)
            return session

        fake._new_session = record  # type: ignore[method-assign]

    def env(self, base: dict[str, str | None], **extra: str | None) -> dict[str, str | None]:
        env = dict(base)
        env.update(
            QUATRIX_HOST=self.url,
            QUATRIX_EMAIL=self.admin.email,
            QUATRIX_PASSWORD=ADMIN_PASSWORD,
            QUATRIX_TOTP_SECRET=self.admin.totp_secret,
        )
        env.update(extra)
        return env

    def secrets(self) -> list[str | None]:
        values: list[str | None] = [ADMIN_PASSWORD, USER_PASSWORD, NEW_PIN, self.admin.totp_secret]
        values += [u.totp_secret for u in self.users] + [u.pin for u in self.users]
        return values + self.session_ids

    def invoke(self, args: list[str], env: dict[str, str | None], **kwargs: Any) -> Any:
        result = CliRunner().invoke(build_app(clock=self.clock), args, env=env, **kwargs)
        assert_no_secrets(result, *self.secrets())
        return result


@pytest.fixture
def world(socket_server: Any, clock: FakeClock) -> World:
    swap, url = socket_server
    fake = QuatrixFake(clock=clock, seed=11)
    swap.app = fake
    return World(fake, url, clock)


def test_login_with_totp_secret_from_environment(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["login"], world.env(base_env))
    assert result.exit_code == 0, result.output
    assert "admin@acme.test" in result.stdout
    assert "administrator" in result.stdout
    assert "totp (from the configured secret)" in result.stdout
    assert world.fake.logins_of("admin@acme.test") == 1
    assert world.fake.counts["logout"] == 0  # the session is kept for later commands
    assert world.session_ids  # a session was made, and it was not printed (checked in invoke)
    saved = Path(str(base_env["XDG_STATE_HOME"])) / "quatrix-async" / "credentials.json"
    assert (saved.stat().st_mode & 0o777) == 0o600

    # Later commands reuse it: no second login, even without the password.
    again = world.invoke(["profile", "--json"], world.env(base_env, QUATRIX_PASSWORD=None), input="")
    assert again.exit_code == 0, again.output
    assert world.fake.logins_of("admin@acme.test") == 1
    status = world.invoke(["auth", "status", "--json"], world.env(base_env))
    assert status.exit_code == 0 and json.loads(status.stdout)["logged_in"] is True

    out = world.invoke(["auth", "logout"], world.env(base_env))
    assert out.exit_code == 0, out.output
    assert world.fake.counts["logout"] == 1  # ended on the server too
    assert world.invoke(["auth", "status"], world.env(base_env)).exit_code == 1


def test_login_prompts_for_the_code_without_a_secret(world: World, base_env: dict[str, str | None]) -> None:
    code = Totp(world.admin.totp_secret or "").code_at(world.clock.now())
    result = world.invoke(
        ["login", "--json"], world.env(base_env, QUATRIX_TOTP_SECRET=None), input=code + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "Authentication code" in result.stderr
    assert code not in result.stdout and code not in result.stderr
    data = json.loads(result.stdout[result.stdout.index("{") :])
    assert data["second_factor"] == "totp (typed)"
    assert data["user"]["email"] == "admin@acme.test"


def test_password_prompt_is_hidden_and_pin_login(world: World, base_env: dict[str, str | None]) -> None:
    pin_user = world.fake.add_user(email="pin@acme.test", password=USER_PASSWORD, pin="24680")
    env = world.env(base_env, QUATRIX_EMAIL=pin_user.email, QUATRIX_PASSWORD=None, QUATRIX_TOTP_SECRET=None)
    result = world.invoke(["login"], env, input=f"{USER_PASSWORD}\n24680\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.stderr and "PIN" in result.stderr
    assert "pin (typed)" in result.stdout
    assert_no_secrets(result, "24680")


def test_wrong_password_exits_2_without_echoing_it(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["login"], world.env(base_env, QUATRIX_PASSWORD="not-the-password-xyz"))
    assert result.exit_code == 2
    assert f"error: {world.url} did not accept the e-mail and password of admin@acme.test" in result.stderr
    assert "AuthenticationError" not in result.stderr and "Traceback" not in result.output
    assert_no_secrets(result, "not-the-password-xyz")


def test_wrong_code_exits_2(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["login"], world.env(base_env, QUATRIX_TOTP_SECRET=None), input="000000\n" * 3)
    assert result.exit_code == 2
    assert result.stderr.count("That code was not accepted") == 2  # asked three times in all
    assert f"error: {world.url} did not accept the code" in result.stderr
    assert "MfaCodeRejectedError" not in result.stderr
    assert not (Path(str(base_env["XDG_STATE_HOME"])) / "quatrix-async" / "credentials.json").exists()


def test_missing_credentials_without_input_exit_2(world: World, base_env: dict[str, str | None]) -> None:
    env = world.env(base_env, QUATRIX_PASSWORD=None)
    result = world.invoke(["profile"], env, input="")
    assert result.exit_code == 2
    assert "QUATRIX_PASSWORD" in result.stderr
    assert world.fake.counts["basic_login"] == 0


def test_profile_json(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["profile", "--json"], world.env(base_env))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["email"] == "admin@acme.test"
    assert data["administrator"] is True
    assert data["auth_methods"] == ["2FA"]


def test_profile_table(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["profile"], world.env(base_env))
    assert result.exit_code == 0, result.output
    assert "Profile" in result.stdout and "admin@acme.test" in result.stdout


def test_mfa_enrol_draws_the_qr_code_and_confirms(world: World, base_env: dict[str, str | None]) -> None:
    user = world.users[1]  # no MFA yet
    assert user.mfa_kind == "none"

    def code() -> str:  # computed when the command asks: the secret exists only then
        return Totp(user.pending_totp_secret or "").code_at(world.clock.now())

    env = world.env(
        base_env, QUATRIX_EMAIL=user.email, QUATRIX_PASSWORD=USER_PASSWORD, QUATRIX_TOTP_SECRET=None
    )
    prompter = ScriptedPrompter({"authenticator app": code})
    result = CliRunner().invoke(build_app(clock=world.clock, prompter=prompter), ["mfa", "enrol"], env=env)
    assert prompter.asked == ["Code from your authenticator app"]
    assert result.exit_code == 0, result.output
    assert "▀" in result.stdout or "▄" in result.stdout  # the QR code, drawn with half blocks
    assert "Two-factor authentication is on" in result.stdout
    assert user.mfa_kind == "2fa" and user.totp_secret is not None
    assert world.fake.ledger.count("profile.set-mfa", user.id) == 1
    typed = Totp(user.totp_secret).code_at(world.clock.now())
    assert_no_secrets(result, *world.secrets(), user.totp_secret, typed)


def test_mfa_enrol_show_secret_is_opt_in(world: World, base_env: dict[str, str | None]) -> None:
    user = world.users[3]

    def code() -> str:
        return Totp(user.pending_totp_secret or "").code_at(world.clock.now())

    env = world.env(
        base_env, QUATRIX_EMAIL=user.email, QUATRIX_PASSWORD=USER_PASSWORD, QUATRIX_TOTP_SECRET=None
    )
    prompter = ScriptedPrompter({"authenticator app": code})
    result = CliRunner().invoke(
        build_app(clock=world.clock, prompter=prompter), ["mfa", "enrol", "--show-secret"], env=env
    )
    assert result.exit_code == 0, result.output
    assert user.totp_secret is not None and user.totp_secret in result.stdout


def _csv(tmp_path: Path, header: str, rows: list[str]) -> Path:
    path = tmp_path / "users.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_reset_dry_run_sends_no_write(world: World, base_env: dict[str, str | None], tmp_path: Path) -> None:
    csv_path = _csv(tmp_path, "email,name", [f"{u.email},x" for u in world.users])
    result = world.invoke(
        ["mfa", "reset", "--csv", str(csv_path), "--dry-run", "--json"], world.env(base_env)
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dry_run"] is True
    assert sorted(e["email"] for e in data["would_change"]) == [
        "user0@acme.test",
        "user2@acme.test",
        "user4@acme.test",
    ]
    assert {e["reason"] for e in data["would_skip"]} == {"no 2FA to reset"}
    assert world.fake.ledger.entries() == []


def test_dry_run_table_and_unknown_user(
    world: World, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    csv_path = _csv(tmp_path, "id", [world.users[0].id, "no-such-id"])
    result = world.invoke(["mfa", "remove", "--csv", str(csv_path), "--dry-run"], world.env(base_env))
    assert result.exit_code == 1  # the real run would fail for the unknown user
    assert "would remove 2FA" in result.stdout and "unknown user" in result.stdout
    assert world.fake.ledger.entries() == []


def test_reset_with_failures_then_resume_repeats_no_write(
    world: World, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    users = [
        world.fake.add_user(email=f"bulk{i:02d}@acme.test", password=USER_PASSWORD, mfa=True)
        for i in range(20)
    ]
    csv_path = _csv(tmp_path, "id", [u.id for u in users])
    journal = tmp_path / "reset.journal"
    world.fake.controls.fail_next("server_error", 4, path="*/user/reset-mfa")
    args = [
        "mfa",
        "reset",
        "--csv",
        str(csv_path),
        "--journal",
        str(journal),
        "--concurrency",
        "5",
        "--json",
        "--yes",
    ]

    first = world.invoke(args, world.env(base_env))
    assert first.exit_code == 1, first.output
    summary = json.loads(first.stdout)
    assert summary["ok"] is False and summary["failed"] == 4 and summary["done"] == 16
    assert (os.stat(journal).st_mode & 0o777) == 0o600

    second = world.invoke(args, world.env(base_env))
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert summary["done"] == 4
    assert summary["skipped_by_reason"] == {"already done (journal)": 16}
    ledger = world.fake.ledger
    assert ledger.keys("user.reset-mfa") == {u.id for u in users}
    assert ledger.duplicates("user.reset-mfa") == {}


def test_set_pin_for_all_users(world: World, base_env: dict[str, str | None]) -> None:
    env = world.env(base_env, QUATRIX_NEW_PIN=NEW_PIN)
    result = world.invoke(["mfa", "set", "--all", "--auth-type", "pin", "--rate", "200", "--yes"], env)
    assert result.exit_code == 0, result.output
    assert "set PIN" in result.stdout and "done" in result.stdout
    assert all(u.mfa_kind == "pin" and u.pin == NEW_PIN for u in world.users)
    assert world.admin.mfa_kind == "2fa"  # never the caller's own account
    assert world.fake.ledger.keys("user.set-mfa") == {u.id for u in world.users}


def test_remove_by_email_with_progress_bar(
    world: World, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    csv_path = _csv(tmp_path, "Email", [u.email for u in world.users] + [world.users[0].email])
    result = world.invoke(["mfa", "remove", "--csv", str(csv_path), "-y"], world.env(base_env))
    assert result.exit_code == 0, result.output
    assert "remove 2FA" in result.stderr  # the progress bar
    assert "2FA not enabled" in result.stdout  # skipped users, by reason
    assert all(u.mfa_kind == "none" for u in world.users)
    assert world.fake.ledger.duplicates() == {}


def test_usage_errors_exit_2(world: World, base_env: dict[str, str | None], tmp_path: Path) -> None:
    bad = _csv(tmp_path, "name", ["x"])
    result = world.invoke(["mfa", "reset", "--csv", str(bad)], world.env(base_env))
    assert result.exit_code == 2 and "'id' or 'email'" in result.stderr
    result = world.invoke(["mfa", "reset"], world.env(base_env))
    assert result.exit_code == 2 and "--csv PATH or --all" in result.stderr
    result = world.invoke(["mfa", "reset", "--all", "--concurrency", "0"], world.env(base_env))
    assert result.exit_code == 2
    result = world.invoke(["login", "--password", "x"], world.env(base_env))
    assert result.exit_code == 2  # there is no way to pass a password in argv
    assert world.fake.counts["basic_login"] == 0


def test_config_file_readable_by_group_is_refused(
    world: World, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    config = tmp_path / "quatrix.toml"
    config.write_text(
        f'[quatrix]\nhost = "{world.url}"\nemail = "{world.admin.email}"\n'
        f'password = "{ADMIN_PASSWORD}"\ntotp_secret = "{world.admin.totp_secret}"\n'
    )
    config.chmod(0o640)
    result = world.invoke(["--config", str(config), "login"], base_env)
    assert result.exit_code == 2
    assert "chmod 600" in result.stderr and "0640" in result.stderr
    assert world.fake.counts["basic_login"] == 0

    config.chmod(0o600)
    result = world.invoke(["--config", str(config), "login"], base_env)
    assert result.exit_code == 0, result.output
    assert "admin@acme.test" in result.stdout


def test_default_config_file_json(world: World, base_env: dict[str, str | None], tmp_path: Path) -> None:
    folder = Path(str(base_env["XDG_CONFIG_HOME"])) / "quatrix-async"
    folder.mkdir(parents=True)
    config = folder / "config.toml"
    config.write_text(f'host = "{world.url}"\nemail = "{world.admin.email}"\npassword = "{ADMIN_PASSWORD}"\n')
    config.chmod(0o600)
    env = dict(base_env, QUATRIX_TOTP_SECRET=world.admin.totp_secret)  # the environment fills in the rest
    result = world.invoke(["profile", "--json"], env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["email"] == "admin@acme.test"

    config.chmod(0o604)
    result = world.invoke(["profile", "--json"], env)
    assert result.exit_code == 2 and "chmod 600" in result.stderr


def test_python_dash_m_subprocess(world: World, tmp_path: Path) -> None:
    pin_user = world.fake.add_user(
        email="pinadmin@acme.test", password=ADMIN_PASSWORD, pin="97531", admin=True
    )
    env = subprocess_env(
        {
            "XDG_CONFIG_HOME": str(tmp_path),
            "QUATRIX_HOST": world.url,
            "QUATRIX_EMAIL": pin_user.email,
            "QUATRIX_PASSWORD": ADMIN_PASSWORD,
            "QUATRIX_PIN": "97531",
        }
    )
    csv_path = _csv(tmp_path, "email", [u.email for u in world.users])
    done_proc = start(["quatrix_async", "mfa", "reset", "--csv", str(csv_path), "--json", "--yes"], env)
    failed_proc = start(["quatrix_async", "login"], {**env, "QUATRIX_PASSWORD": "wrong-password-123"})
    done, failed = finish(done_proc), finish(failed_proc)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["done"] == 3 and summary["skipped"] == 3
    assert world.fake.ledger.keys("user.reset-mfa") == {world.users[i].id for i in (0, 2, 4)}
    for secret in [ADMIN_PASSWORD, "97531", *world.session_ids]:
        assert secret not in done.stdout and secret not in done.stderr

    assert failed.returncode == 2
    assert failed.stderr.startswith(f"error: {world.url} did not accept the e-mail and password")
    assert "AuthenticationError" not in failed.stderr and "Traceback" not in failed.stderr
    assert "wrong-password-123" not in failed.stderr + failed.stdout


def test_saved_session_expires_when_idle_and_is_forgotten_when_revoked(
    world: World, base_env: dict[str, str | None]
) -> None:
    env = world.env(base_env)
    assert world.invoke(["auth", "login"], env).exit_code == 0
    assert world.fake.logins_of("admin@acme.test") == 1

    world.clock.advance(20 * 60)  # past the idle timeout: the saved session is not used
    result = world.invoke(["profile", "--json"], env)
    assert result.exit_code == 0, result.output
    assert world.fake.logins_of("admin@acme.test") == 2  # a fresh login instead

    assert world.invoke(["auth", "login"], env).exit_code == 0
    world.fake.expire_all_sessions()  # the server forgot every session (revoked elsewhere)
    result = world.invoke(["profile"], world.env(base_env, QUATRIX_PASSWORD=None), input="")
    assert result.exit_code == 2
    assert "has expired or was revoked (forgotten now)" in result.stderr and "auth login" in result.stderr
    assert world.invoke(["auth", "status"], env).exit_code == 1
