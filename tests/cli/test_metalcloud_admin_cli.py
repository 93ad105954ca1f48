"""The ``metalcloud-async users`` batch commands (force-2fa-reenrol, create, ssh-keys add, limits
set) driven through the real command tree against the fake on a loopback socket: JSON output,
dry runs, a fault run and a journaled resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.testing import generate_base32_secret

from .conftest import assert_no_secrets

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVsbG8td29ybGQtZXhhbXBsZS1rZXktYnl0ZXM= a@x"


class Admin:
    def __init__(
        self, fake: MetalCloudFake, url: str, clock: FakeClock, base_env: dict[str, str | None]
    ) -> None:
        self.fake = fake
        self.clock = clock
        self.root = fake.add_user("admin@metal.test", "admin-pass-Metal-1", access_level="admin")
        self.env = dict(base_env, METALCLOUD_URL=url, METALCLOUD_API_KEY=self.root.api_key)

    def run(self, *args: str) -> Any:
        result = CliRunner().invoke(build_app(clock=self.clock), list(args), env=self.env)
        assert_no_secrets(result, self.root.api_key, *(u.api_key for u in self.fake.users))
        return result


@pytest.fixture
def admin(socket_server: Any, clock: FakeClock, base_env: dict[str, str | None]) -> Admin:
    swap, url = socket_server
    fake = MetalCloudFake(clock=clock)
    swap.app = fake
    return Admin(fake, url, clock, base_env)


def csv_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_create_users_dry_run_then_run_then_rerun(admin: Admin, tmp_path: Path) -> None:
    rows = "email,display_name,account_id\n" + "".join(f"p{i}@metal.test,P {i},\n" for i in range(5))
    path = csv_file(tmp_path, "users.csv", rows)
    plan = admin.run("users", "create", "--csv", path, "--dry-run", "--json")
    assert plan.exit_code == 0, plan.output
    data = json.loads(plan.stdout)
    assert data["dry_run"] is True and data["count"] == 5 and len(admin.fake.ledger) == 0
    first = admin.run("users", "create", "--csv", path, "--yes", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["done"] == 5
    again = admin.run("users", "create", "--csv", path)
    assert again.exit_code == 0, again.output
    assert "user exists" in again.stdout
    assert (
        admin.fake.ledger.duplicates("create-user") == {}
        and len(admin.fake.ledger.entries("create-user")) == 5
    )


def test_create_users_fault_run_and_resume(admin: Admin, tmp_path: Path) -> None:
    rows = "email,display_name\n" + "".join(f"bulk{i:02d}@metal.test,Bulk {i}\n" for i in range(12))
    path = csv_file(tmp_path, "users.csv", rows)
    journal = str(tmp_path / "create.journal")
    # Two creations fail outright, one is applied with its answer lost (verified, not repeated).
    admin.fake.controls.fail_next("server_error", 2, path="/api/v2/users", method="POST")
    admin.fake.controls.fail_next("drop_after", 1, path="/api/v2/users", method="POST")
    args = ["users", "create", "--csv", path, "--journal", journal, "--concurrency", "3", "--yes", "--json"]
    first = admin.run(*args)
    assert first.exit_code == 1, first.output
    summary = json.loads(first.stdout)
    assert (summary["done"], summary["failed"], summary["unknown"]) == (10, 2, 0)
    second = admin.run(*args)
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert (summary["done"], summary["skipped"]) == (2, 10)
    ledger = admin.fake.ledger
    assert len(ledger.entries("create-user")) == 12 and ledger.duplicates("create-user") == {}


def test_force_reenrol_from_csv_and_by_age(admin: Admin, tmp_path: Path) -> None:
    users = [
        admin.fake.add_user(f"u{i}@metal.test", "pw-user-1234", totp_secret=generate_base32_secret(20))
        for i in range(3)
    ]
    path = csv_file(tmp_path, "r.csv", f"user\n{users[0].id}\nu1@metal.test\n")
    result = admin.run("users", "force-2fa-reenrol", "--csv", path, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["done"] == 2
    assert [u.authenticator_must_change for u in users] == [True, True, False]
    admin.clock.advance(86_400 * 10)
    plan = admin.run("users", "force-2fa-reenrol", "--created-before", "2100-01-01", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "u2@metal.test" in plan.stdout and "1 would change" in plan.stdout
    assert not users[2].authenticator_must_change


def test_ssh_keys_and_limits_commands(admin: Admin, tmp_path: Path) -> None:
    target = admin.fake.add_user("t@metal.test", "pw-target-123")
    keys = csv_file(tmp_path, "k.csv", f'user,ssh_key\nt@metal.test,"{KEY}"\n')
    result = admin.run("users", "ssh-keys", "add", "--csv", keys, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["done"] == 1
    again = admin.run("users", "ssh-keys", "add", "--csv", keys, "--yes", "--json")
    assert json.loads(again.stdout)["skipped_by_reason"] == {"key present": 1}
    limits = csv_file(tmp_path, "l.csv", f"user,infrastructure_active_max_count\n{target.id},2\n")
    result = admin.run("users", "limits", "set", "--csv", limits, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert target.limits == {"infrastructureActiveMaxCount": 2}


@pytest.mark.parametrize("uid", [10_000_000, 3_000_000_000])
def test_large_user_ids_through_the_batch_commands(admin: Admin, tmp_path: Path, uid: int) -> None:
    """Ids are integers end to end: a CSV id, a plan's key and every path keep all its digits
    (one snapshot of the official Go SDK sent ``/users/1e+07``)."""
    target = admin.fake.add_user(
        f"big{uid}@metal.test", "pw-big-12345", user_id=uid, totp_secret=generate_base32_secret(20)
    )
    rows = csv_file(tmp_path, "r.csv", f"user\n{uid}\n")
    result = admin.run("users", "force-2fa-reenrol", "--csv", rows, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["done"] == 1 and target.authenticator_must_change
    limits = csv_file(tmp_path, "l.csv", f"user,infrastructure_active_max_count\n{uid},4\n")
    plan = tmp_path / "limits.plan"
    made = admin.run("users", "limits", "set", "--csv", limits, "--plan", str(plan))
    assert made.exit_code == 0, made.output
    assert [c["id"] for c in json.loads(plan.read_text())["changes"]] == [str(uid)]
    applied = admin.run("apply", str(plan), "--yes", "--json")
    assert applied.exit_code == 0, applied.output
    assert target.limits == {"infrastructureActiveMaxCount": 4}
    assert {e.key for e in admin.fake.ledger.entries()} == {str(uid)}
    paths = [path for _, path in admin.fake.controls.requests_seen if "/users/" in path]
    assert paths and all(path.startswith(f"/api/v2/users/{uid}") for path in paths)


@pytest.mark.parametrize("cell", ["\u0661\u0662", "\u00b2", "1e7", "12.0"])
def test_a_user_id_is_ascii_decimal_digits_only(admin: Admin, tmp_path: Path, cell: str) -> None:
    """ "\u0661\u0662" (Arabic-Indic digits) must not become user 12, nor "\u00b2" a crash mid-run."""
    path = csv_file(tmp_path, "ids.csv", f"user\n{cell}\n")
    result = admin.run("users", "force-2fa-reenrol", "--csv", path, "--yes")
    assert result.exit_code == 2, result.output
    assert "ids.csv line 2" in result.stderr
    assert admin.fake.controls.total_requests == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["users", "create"], "--csv FILE is required"),
        (["users", "force-2fa-reenrol"], "exactly one of"),
        (["users", "force-2fa-reenrol", "--created-before", "last tuesday"], "ISO date"),
    ],
)
def test_usage_errors_exit_2(admin: Admin, args: list[str], words: str) -> None:
    result = admin.run(*args)
    assert result.exit_code == 2 and words in result.stderr
    assert admin.fake.controls.total_requests == 0


def test_bad_csv_row_exits_2_before_any_request(admin: Admin, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "bad.csv", "email,display_name\nok@metal.test,Ok\nnot-an-address,X\n")
    result = admin.run("users", "create", "--csv", path)
    assert result.exit_code == 2
    assert "bad.csv line 3" in result.stderr
    assert admin.fake.controls.total_requests == 0


def test_login_warns_when_the_password_must_change(admin: Admin) -> None:
    admin.root.password_change_required = True
    result = admin.run("login")
    assert result.exit_code == 0, result.output
    assert "requires a password change" in result.stderr
    result = admin.run("whoami", "--json")
    assert json.loads(result.stdout)["password_change_required"] is True


def test_mfa_enrol_completes_a_forced_reenrolment(admin: Admin, tmp_path: Path) -> None:
    from mfa_common.totp import Totp

    from .conftest import ScriptedPrompter

    old = generate_base32_secret(20)
    user = admin.fake.add_user("lost.phone@metal.test", "pw-lost-phone-1", totp_secret=old)
    rows = csv_file(tmp_path, "r.csv", "user\nlost.phone@metal.test\n")
    forced = admin.run("users", "force-2fa-reenrol", "--csv", rows, "--yes")
    assert forced.exit_code == 0, forced.output

    def code() -> str:
        admin.clock.advance(30)
        return Totp(user.pending_totp_secret or "").code_at(admin.clock.now())

    env = dict(
        admin.env, METALCLOUD_API_KEY=None, METALCLOUD_EMAIL=user.email, METALCLOUD_PASSWORD="pw-lost-phone-1"
    )
    prompter = ScriptedPrompter({"authenticator app": code})
    result = CliRunner().invoke(build_app(clock=admin.clock, prompter=prompter), ["mfa", "enrol"], env=env)
    assert result.exit_code == 0, result.output
    assert (
        "requires a new authenticator" in result.stderr and "A new authenticator is enrolled" in result.stdout
    )
    assert user.totp_secret not in (None, old) and not user.authenticator_must_change
    assert_no_secrets(result, old, user.totp_secret, "pw-lost-phone-1")


def test_a_bulk_change_without_yes_is_refused_without_a_terminal(admin: Admin, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "users.csv", "email,display_name\nq1@metal.test,Q 1\nq2@metal.test,Q 2\n")
    result = admin.run("users", "create", "--csv", path)
    assert result.exit_code == 2, result.output
    assert "create users for 2 users" in result.stderr and "--yes" in result.stderr
    assert admin.fake.ledger.entries("create-user") == []


def test_limits_plan_then_apply_skips_a_user_changed_meanwhile(admin: Admin, tmp_path: Path) -> None:
    kept = admin.fake.add_user("kept@metal.test", "pw-kept-12345")
    moved = admin.fake.add_user("moved@metal.test", "pw-moved-1234")
    rows = f"user,infrastructure_active_max_count\n{kept.id},3\n{moved.id},3\n"
    limits = csv_file(tmp_path, "l.csv", rows)
    plan = tmp_path / "limits.plan"
    made = admin.run("users", "limits", "set", "--csv", limits, "--plan", str(plan))
    assert made.exit_code == 0, made.output
    document = json.loads(plan.read_text())
    assert document["command"] == "users limits set" and len(document["changes"]) == 2
    assert kept.limits == {} and moved.limits == {}  # a plan sends nothing
    moved.limits = {"infrastructureActiveMaxCount": 9}  # someone else changed it since
    applied = admin.run("apply", str(plan), "--yes", "--json")
    assert applied.exit_code == 0, applied.output
    summary = json.loads(applied.stdout)
    assert summary["done"] == 1 and summary["skipped_by_reason"] == {"changed since the plan (changes)": 1}
    assert kept.limits == {"infrastructureActiveMaxCount": 3}
    assert moved.limits == {"infrastructureActiveMaxCount": 9}


def test_retry_unknown_only_where_the_write_is_idempotent(admin: Admin) -> None:
    offered = admin.run("users", "ssh-keys", "add", "--help")
    assert offered.exit_code == 0 and "--retry-unknown" in offered.stdout
    withheld = admin.run("users", "create", "--help")
    assert withheld.exit_code == 0 and "--retry-unknown" not in withheld.stdout


def test_reenrol_by_age_plan_then_apply(admin: Admin, tmp_path: Path) -> None:
    users = [
        admin.fake.add_user(f"old{i}@metal.test", "pw-user-1234", totp_secret=generate_base32_secret(20))
        for i in range(3)
    ]
    admin.clock.advance(86_400)
    plan = tmp_path / "reenrol.plan"
    made = admin.run("users", "force-2fa-reenrol", "--created-before", "2100-01-01", "--plan", str(plan))
    assert made.exit_code == 0, made.output
    assert sorted(c["email"] for c in json.loads(plan.read_text())["changes"]) == [u.email for u in users]
    assert not any(u.authenticator_must_change for u in users)
    users[0].authenticator_must_change = True  # forced by someone else meanwhile
    applied = admin.run("apply", str(plan), "--yes", "--json")
    assert applied.exit_code == 0, applied.output
    summary = json.loads(applied.stdout)
    assert (summary["done"], summary["skipped_by_reason"]) == (2, {"re-enrolment already due": 1})
    assert all(u.authenticator_must_change for u in users)
