"""``metalcloud-async`` driven as a user would: CliRunner with environment variables (and one real
subprocess), against the MetalCloud fake on a loopback socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app
from metalcloud_async.testing import FakeUser, MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.testing import generate_base32_secret
from mfa_common.totp import Totp

from .conftest import ScriptedPrompter, assert_no_secrets, finish, start, subprocess_env

ADMIN_PASSWORD = "admin-pass-Metal-1"
USER_PASSWORD = "user-pass-Metal-2"


class World:
    """The fake, an admin with 2FA, users with and without 2FA, and every JWT issued."""

    def __init__(self, fake: MetalCloudFake, url: str, clock: FakeClock) -> None:
        self.fake = fake
        self.url = url
        self.clock = clock
        self.admin_secret = generate_base32_secret(20)
        self.admin = fake.add_user(
            "admin@metal.test", ADMIN_PASSWORD, access_level="admin", totp_secret=self.admin_secret
        )
        # ids 2..9: every third has 2FA, id 6 is suspended already, id 9 archived.
        self.users: list[FakeUser] = [
            fake.add_user(
                f"user{i}@metal.test",
                USER_PASSWORD,
                totp_secret=generate_base32_secret(20) if i % 3 == 0 else None,
                suspended=i == 4,
                archived=i == 7,
            )
            for i in range(8)
        ]
        self.tokens: list[str] = []
        original = fake.issue_jwt

        def record(user: Any, **kwargs: Any) -> str:
            token = original(user, **kwargs)
            self.tokens.append(token)
            return token

        fake.issue_jwt = record  # type: ignore[method-assign]

    @property
    def lacking(self) -> set[str]:
        """E-mails of the non-archived users without 2FA."""
        return {u.email for u in self.users if u.totp_secret is None and not u.archived}

    def env(self, base: dict[str, str | None], **extra: str | None) -> dict[str, str | None]:
        env = dict(base)
        env.update(
            METALCLOUD_URL=self.url,
            METALCLOUD_EMAIL=self.admin.email,
            METALCLOUD_PASSWORD=ADMIN_PASSWORD,
            METALCLOUD_TOTP_SECRET=self.admin_secret,
        )
        env.update(extra)
        return env

    def secrets(self) -> list[str | None]:
        values: list[str | None] = [ADMIN_PASSWORD, USER_PASSWORD, self.admin_secret]
        values += [u.totp_secret for u in self.users] + [u.api_key for u in [self.admin, *self.users]]
        return values + self.tokens

    def invoke(self, args: list[str], env: dict[str, str | None], **kwargs: Any) -> Any:
        prompter = kwargs.pop("prompter", None)
        result = CliRunner().invoke(build_app(clock=self.clock, prompter=prompter), args, env=env, **kwargs)
        assert_no_secrets(result, *self.secrets())
        return result


@pytest.fixture
def world(socket_server: Any, clock: FakeClock) -> World:
    swap, url = socket_server
    fake = MetalCloudFake(clock=clock)
    swap.app = fake
    return World(fake, url, clock)


def test_login_with_password_and_totp_secret(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["login"], world.env(base_env))
    assert result.exit_code == 0, result.output
    assert "admin@metal.test" in result.stdout
    assert "second factor: totp (from the configured secret)" in result.stdout
    assert world.fake.counts["login"] == 1 and world.fake.counts["logout"] == 0  # the session is kept
    assert world.tokens  # JWTs were issued, and none was printed (checked in invoke)
    saved = Path(str(base_env["XDG_STATE_HOME"])) / "metalcloud-async" / "credentials.json"
    assert (saved.stat().st_mode & 0o777) == 0o600

    # Later commands reuse the saved JWT: no second login, even without the password.
    again = world.invoke(["whoami", "--json"], world.env(base_env, METALCLOUD_PASSWORD=None), input="")
    assert again.exit_code == 0, again.output
    assert world.fake.counts["login"] == 1
    status = world.invoke(["auth", "status"], world.env(base_env))
    assert status.exit_code == 0 and "the server accepts it" in status.stdout

    out = world.invoke(["auth", "logout"], world.env(base_env))
    assert out.exit_code == 0, out.output
    assert world.fake.counts["logout"] == 1  # ended on the server too
    assert world.invoke(["auth", "status"], world.env(base_env)).exit_code == 1


def test_login_prompts_for_the_2fa_code(world: World, base_env: dict[str, str | None]) -> None:
    code = Totp(world.admin_secret).code_at(world.clock.now())
    result = world.invoke(
        ["login", "--json"], world.env(base_env, METALCLOUD_TOTP_SECRET=None), input=code + "\n"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{") :])
    assert data["second_factor"] == "totp (typed)" and data["method"] == "password"
    assert_no_secrets(result, code)


def test_wrong_2fa_code_exits_2(world: World, base_env: dict[str, str | None]) -> None:
    right = Totp(world.admin_secret).code_at(world.clock.now())
    wrong = "111111" if right != "111111" else "222222"
    result = world.invoke(
        ["login"], world.env(base_env, METALCLOUD_TOTP_SECRET=None), input=(wrong + "\n") * 3
    )
    assert result.exit_code == 2
    assert result.stderr.count("That code was not accepted") == 2  # asked three times in all
    assert f"error: {world.url} did not accept the code" in result.stderr
    assert "Error" not in result.stderr  # no class name without --debug
    assert world.fake.counts["login"] == 0


def test_api_key_login_and_whoami_json(world: World, base_env: dict[str, str | None]) -> None:
    env = dict(base_env, METALCLOUD_URL=world.url, METALCLOUD_API_KEY=world.admin.api_key)
    result = world.invoke(["login"], env)
    assert result.exit_code == 0, result.output
    assert "Method: API key" in result.stdout
    assert "API key saved to" in result.stdout and "Api key" not in result.stdout
    result = world.invoke(["whoami", "--json"], env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["email"] == "admin@metal.test" and data["two_factor_enabled"] is True
    assert world.fake.counts["password_login"] == 0


def test_whoami_table(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["whoami"], world.env(base_env))
    assert result.exit_code == 0, result.output
    assert "Current user" in result.stdout and "admin@metal.test" in result.stdout


def test_mfa_enrol_draws_qr_and_enables(world: World, base_env: dict[str, str | None]) -> None:
    user = world.users[1]
    assert user.totp_secret is None

    def code() -> str:  # computed when the command asks: the secret exists only then
        return Totp(user.pending_totp_secret or "").code_at(world.clock.now())

    prompter = ScriptedPrompter({"authenticator app": code})
    env = world.env(
        base_env, METALCLOUD_EMAIL=user.email, METALCLOUD_PASSWORD=USER_PASSWORD, METALCLOUD_TOTP_SECRET=None
    )
    result = world.invoke(["mfa", "enrol"], env, prompter=prompter)
    assert result.exit_code == 0, result.output
    assert "▀" in result.stdout or "▄" in result.stdout
    assert "Two-factor authentication is on" in result.stdout
    assert user.totp_secret is not None
    assert world.fake.ledger.count("2fa-enable", str(user.id)) == 1
    assert_no_secrets(result, user.totp_secret, Totp(user.totp_secret).code_at(world.clock.now()))

    world.clock.advance(30)  # the enabling code's time step is spent; log in with the next one
    again = world.invoke(
        ["mfa", "enrol"], dict(env, METALCLOUD_TOTP_SECRET=user.totp_secret), prompter=prompter
    )
    assert again.exit_code == 1 and "already on" in again.stderr


def test_users_without_2fa_json_and_table(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["users", "without-2fa", "--json"], world.env(base_env))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {u["email"] for u in data["users"]} == world.lacking
    assert data["complete"] is True and data["count"] == len(world.lacking)

    result = world.invoke(["users", "without-2fa", "--include-archived"], world.env(base_env))
    assert result.exit_code == 0, result.output
    assert "user7@metal.test" in result.stdout and "checking users" in result.stderr
    assert world.fake.ledger.entries() == []


def test_suspend_dry_run_sends_no_write(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["users", "suspend-without-2fa", "--dry-run", "--json"], world.env(base_env))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = {u.email for u in world.users if u.totp_secret is None and not u.archived and not u.suspended}
    assert {u["email"] for u in data["would_change"]} == expected
    assert {u["action"] for u in data["would_change"]} == {"suspend"}
    assert world.fake.ledger.entries() == []

    table = world.invoke(["users", "suspend-without-2fa", "--dry-run"], world.env(base_env))
    assert table.exit_code == 0 and "would suspend" in table.stdout and "3 would change" in table.stdout
    assert world.fake.ledger.entries() == []


def test_suspend_with_faults_then_resume_repeats_no_write(
    world: World, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    extra = [world.fake.add_user(f"bulk{i:02d}@metal.test", USER_PASSWORD) for i in range(15)]
    targets = {
        u.id for u in [*world.users, *extra] if u.totp_secret is None and not u.archived and not u.suspended
    }
    journal = tmp_path / "suspend.journal"
    # Two writes fail outright; one is applied but its answer is lost (checked, not repeated).
    world.fake.controls.fail_next("server_error", 2, path="*/actions/suspend")
    world.fake.controls.fail_next("drop_after", 1, path="*/actions/suspend")
    args = [
        "users",
        "suspend-without-2fa",
        "--journal",
        str(journal),
        "--concurrency",
        "4",
        "--json",
        "--yes",
    ]

    first = world.invoke(args, world.env(base_env))
    assert first.exit_code == 1, first.output
    summary = json.loads(first.stdout)
    assert summary["failed"] == 2 and summary["ok"] is False
    assert summary["done"] == len(targets) - 2

    second = world.invoke(args, world.env(base_env, METALCLOUD_TOTP_SECRET=None), input="")
    # No TOTP secret and no input: the login cannot finish, nothing is written.
    assert second.exit_code == 2

    third = world.invoke(args, world.env(base_env))
    assert third.exit_code == 0, third.output
    summary = json.loads(third.stdout)
    assert summary["done"] == 2
    ledger = world.fake.ledger
    assert ledger.keys("suspend") == {str(i) for i in targets}
    assert ledger.duplicates("suspend") == {}
    assert all(world.fake.user(i).suspended for i in targets)
    assert not world.admin.suspended


def test_progress_bar_and_summary_table(world: World, base_env: dict[str, str | None]) -> None:
    result = world.invoke(["users", "suspend-without-2fa", "--rate", "500", "--yes"], world.env(base_env))
    assert result.exit_code == 0, result.output
    assert "suspend users without 2FA" in result.stderr
    assert "Skipped by reason" in result.stdout and "own account" in result.stdout


def test_config_file_readable_by_others_is_refused(
    world: World, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    config = tmp_path / "metal.json"
    config.write_text(json.dumps({"metalcloud": {"url": world.url, "api_key": world.admin.api_key}}))
    config.chmod(0o644)
    result = world.invoke(["--config", str(config), "whoami"], base_env)
    assert result.exit_code == 2
    assert "chmod 600" in result.stderr
    config.chmod(0o600)
    result = world.invoke(["--config", str(config), "whoami", "--json"], base_env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["email"] == "admin@metal.test"


def test_python_dash_m_subprocess(world: World, tmp_path: Path) -> None:
    env = subprocess_env(
        {
            "XDG_CONFIG_HOME": str(tmp_path),
            "METALCLOUD_URL": world.url,
            "METALCLOUD_API_KEY": world.admin.api_key,
        }
    )
    done_proc = start(["metalcloud_async", "users", "without-2fa", "--json"], env)
    bad_proc = start(["metalcloud_async", "whoami"], {**env, "METALCLOUD_API_KEY": "1:" + "x" * 63})
    done, bad = finish(done_proc), finish(bad_proc)
    assert done.returncode == 0, done.stderr
    assert {u["email"] for u in json.loads(done.stdout)["users"]} == world.lacking
    assert world.admin.api_key not in done.stdout + done.stderr

    assert bad.returncode == 2
    assert bad.stderr.startswith(f"error: {world.url} did not accept the credentials")
    assert "AuthenticationError" not in bad.stderr and "Traceback" not in bad.stderr
    assert "x" * 63 not in bad.stdout + bad.stderr
