"""``--plan FILE`` writes the exact changes (who, what, from which state) and sends nothing;
``apply FILE`` executes exactly that list with a journal, skipping each target whose state
changed since the plan; unknown outcomes are settled on the resumed run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app as metalcloud_app
from metalcloud_async.testing import MetalCloudFake
from mfa_common.cli import Prompter
from mfa_common.clock import FakeClock
from quatrix_async.cli import build_app as quatrix_app
from quatrix_async.testing import QuatrixFake

from .conftest import START

ADMIN_PASSWORD = "admin-pass-Quatrix-1"


class Ticking:
    """Time passes on the server: each write to ``suffix`` advances the fake's clock a second."""

    def __init__(self, app: Any, clock: FakeClock, suffix: str) -> None:
        self.app, self.clock, self.suffix = app, clock, suffix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith(self.suffix):
            self.clock.advance(1)
        await self.app(scope, receive, send)


@pytest.fixture
def quatrix(socket_server: Any, base_env: dict[str, str | None]) -> Any:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, seed=9)
    swap.app = fake
    admin = fake.add_user(email="admin@acme.test", password=ADMIN_PASSWORD, mfa=True, admin=True)
    env = dict(
        base_env,
        QUATRIX_HOST=url,
        QUATRIX_EMAIL=admin.email,
        QUATRIX_PASSWORD=ADMIN_PASSWORD,
        QUATRIX_TOTP_SECRET=admin.totp_secret,
    )

    def invoke(args: list[str], env_extra: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return CliRunner().invoke(quatrix_app(clock=clock), args, env={**env, **(env_extra or {})}, **kwargs)

    return fake, clock, swap, invoke


def test_plan_then_apply_skips_a_user_changed_meanwhile(quatrix: Any, tmp_path: Path) -> None:
    fake, clock, _, invoke = quatrix
    users = [fake.add_user(email=f"p{i}@acme.test", password="user-pass-2", pin="13579") for i in range(4)]
    plan = tmp_path / "remove.plan"
    made = invoke(["mfa", "remove", "--all", "--auth-type", "pin", "--plan", str(plan)])
    assert made.exit_code == 0, made.output
    assert f"Apply it with:  quatrix-async apply {plan}" in made.stderr
    assert (os.stat(plan).st_mode & 0o777) == 0o600
    document = json.loads(plan.read_text())
    assert document["command"] == "mfa remove" and document["action"] == "remove PIN"
    assert document["params"]["auth_type"] == "PIN"
    assert {c["id"] for c in document["changes"]} == {u.id for u in users}
    assert all(c["before"]["auth_methods"] == ["PIN"] for c in document["changes"])  # from which state
    assert fake.ledger.entries() == []  # a plan sends nothing

    changed = users[2]
    changed.mfa_kind, changed.pin = "2fa", None  # someone else changed this user after the plan
    changed.modified = clock.now() + 5
    applied = invoke(["apply", str(plan), "--yes", "--json"])
    assert applied.exit_code == 0, applied.output
    summary = json.loads(applied.stdout)
    assert summary["action"] == "remove PIN" and summary["done"] == 3
    assert summary["skipped_by_reason"] == {"changed since the plan (auth_methods, modified)": 1}
    assert fake.ledger.keys("user.remove-mfa") == {u.id for u in users} - {changed.id}
    assert changed.mfa_kind == "2fa"
    assert (tmp_path / "remove.plan.journal").exists()

    again = invoke(["apply", str(plan), "--yes", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["skipped_by_reason"] == {
        "already done (journal)": 3,
        "already skipped (journal)": 1,
    }
    assert fake.ledger.duplicates() == {}

    exists = invoke(["mfa", "remove", "--all", "--auth-type", "pin", "--plan", str(plan)])
    assert exists.exit_code == 2 and "exists already" in exists.stderr


def test_dry_run_and_real_run_name_the_action_alike(quatrix: Any) -> None:
    fake, _, _, invoke = quatrix
    fake.add_user(email="pin@acme.test", password="user-pass-2", pin="13579")
    dry = invoke(["mfa", "remove", "--all", "--auth-type", "PIN", "--dry-run", "--json"])
    real = invoke(["mfa", "remove", "--all", "--auth-type", "PIN", "--yes", "--json"])
    assert dry.exit_code == 0 and real.exit_code == 0, dry.output + real.output
    assert json.loads(dry.stdout)["action"] == json.loads(real.stdout)["action"] == "remove PIN"
    assert json.loads(dry.stdout)["would_change"][0]["action"] == "remove PIN"


def test_plan_of_another_tool_or_server_is_refused(quatrix: Any, tmp_path: Path, base_env: Any) -> None:
    _, _, _, invoke = quatrix
    plan = tmp_path / "reset.plan"
    assert invoke(["mfa", "reset", "--all", "--plan", str(plan)]).exit_code == 0
    other = CliRunner().invoke(
        metalcloud_app(), ["apply", str(plan)], env=dict(base_env, METALCLOUD_URL="http://127.0.0.1:9")
    )
    assert other.exit_code == 2 and "not of metalcloud-async" in other.stderr
    elsewhere = invoke(["--host", "http://127.0.0.1:9", "apply", str(plan)])
    assert elsewhere.exit_code == 2 and "the plan is for" in elsewhere.stderr


def test_reset_unknowns_are_settled_on_resume(quatrix: Any, tmp_path: Path) -> None:
    """The answers to two resets are lost and their verification fails too: they end unknown.
    The resumed run verifies them from the users' modified time (kept from before the first
    attempt) and records them done; nothing is reset twice. Fails on the old CLI, whose resume
    reported the same unknowns again and again."""
    fake, clock, swap, invoke = quatrix
    swap.app = Ticking(fake, clock, "/user/reset-mfa")
    users = [fake.add_user(email=f"r{i}@acme.test", password="user-pass-2", mfa=True) for i in range(6)]
    csv_path = tmp_path / "users.csv"
    csv_path.write_text("email\n" + "\n".join(u.email for u in users) + "\n")
    journal = tmp_path / "reset.journal"
    fake.controls.fail_next("drop_after", 2, path="*/user/reset-mfa")
    fake.controls.fail_next("server_error", 100, path="*/user/metadata/*")
    args = [
        "mfa",
        "reset",
        "--csv",
        str(csv_path),
        "--journal",
        str(journal),
        "--yes",
        "--json",
        "--concurrency",
        "1",
    ]

    first = invoke(args)
    assert first.exit_code == 1, first.output
    assert json.loads(first.stdout)["unknown"] == 2
    fake.controls.clear_scripted()

    second = invoke(args)
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert summary["unknown"] == 0 and summary["done"] == 2
    assert summary["skipped_by_reason"] == {"already done (journal)": 4}
    assert fake.ledger.keys("user.reset-mfa") == {u.id for u in users}
    assert fake.ledger.duplicates("user.reset-mfa") == {}


def test_metalcloud_apply_refuses_a_user_whose_revision_moved(
    socket_server: Any, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = MetalCloudFake(clock=clock)
    swap.app = fake
    admin = fake.add_user("admin@metal.test", "admin-pass-Metal-1", access_level="admin")
    targets = [fake.add_user(f"t{i}@metal.test", "user-pass-Metal-2") for i in range(3)]
    env = dict(base_env, METALCLOUD_URL=url, METALCLOUD_API_KEY=admin.api_key)
    plan = tmp_path / "suspend.plan"
    made = CliRunner().invoke(
        metalcloud_app(clock=clock), ["users", "suspend-without-2fa", "--plan", str(plan)], env=env
    )
    assert made.exit_code == 0, made.output
    document = json.loads(plan.read_text())
    assert {c["before"]["revision"] for c in document["changes"]} == {t.revision for t in targets}

    targets[0].revision += 1  # edited by someone else since the plan
    applied = CliRunner().invoke(metalcloud_app(clock=clock), ["apply", str(plan), "-y", "--json"], env=env)
    assert applied.exit_code == 0, applied.output
    summary = json.loads(applied.stdout)
    assert summary["done"] == 2 and summary["skipped_by_reason"] == {"changed since the plan (revision)": 1}
    assert not targets[0].suspended and targets[1].suspended and targets[2].suspended


def test_set_pin_unknowns_verified_or_retried(quatrix: Any, tmp_path: Path) -> None:
    """Every answer is lost (more drops than the SDK's retries). A first PIN shows in the listing:
    verified, done, not repeated. A PIN replacing another cannot be told apart: it stays unknown,
    re-runs leave it alone, and --retry-unknown runs it again (setting a PIN twice is harmless)."""
    fake, _, _, invoke = quatrix
    fresh = fake.add_user(email="fresh@acme.test", password="user-pass-2")
    had = fake.add_user(email="had@acme.test", password="user-pass-2", pin="13579")
    pin = {"QUATRIX_NEW_PIN": "86421"}

    def run(user: Any, journal: str, *extra: str) -> Any:
        csv_path = tmp_path / f"{journal}.csv"
        csv_path.write_text(f"email\n{user.email}\n")
        args = ["mfa", "set", "--auth-type", "pin", "--csv", str(csv_path), "--yes", "--json"]
        return invoke([*args, "--journal", str(tmp_path / journal), *extra], env_extra=pin)

    fake.controls.fail_next("drop_after", 50, path="*/user/set-mfa")
    first = run(fresh, "fresh")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["done"] == 1  # verified from the listing
    sent = fake.ledger.count("user.set-mfa", fresh.id)
    assert run(fresh, "fresh").exit_code == 0
    assert fake.ledger.count("user.set-mfa", fresh.id) == sent  # done in the journal: not sent again

    second = run(had, "had")
    assert second.exit_code == 1 and json.loads(second.stdout)["unknown"] == 1
    fake.controls.clear_scripted()
    sent = fake.ledger.count("user.set-mfa", had.id)
    still = run(had, "had")
    assert still.exit_code == 1 and json.loads(still.stdout)["unknown"] == 1
    assert fake.ledger.count("user.set-mfa", had.id) == sent  # not repeated blindly
    retried = run(had, "had", "--retry-unknown")
    assert retried.exit_code == 0, retried.output
    assert had.pin == "86421" and fake.ledger.count("user.set-mfa", had.id) == sent + 1


def test_reset_offers_no_retry_unknown(quatrix: Any) -> None:
    _, _, _, invoke = quatrix
    result = invoke(["mfa", "reset", "--all", "--retry-unknown"])
    assert result.exit_code == 2 and "No such option" in result.output


class Confirming(Prompter):
    """A person at a terminal who answers yes and whose questions are kept."""

    def __init__(self) -> None:
        self.questions: list[str] = []

    def interactive(self) -> bool:
        return True

    def confirm(self, text: str) -> bool:
        self.questions.append(text)
        return True


def test_a_resumed_run_asks_about_what_is_left_not_the_whole_list(
    socket_server: Any, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, seed=5)
    swap.app = fake
    admin = fake.add_user(email="admin@acme.test", password=ADMIN_PASSWORD, mfa=True, admin=True)
    users = [fake.add_user(email=f"r{i:02d}@acme.test", password="user-pass-2", mfa=True) for i in range(12)]
    env = dict(
        base_env,
        QUATRIX_HOST=url,
        QUATRIX_EMAIL=admin.email,
        QUATRIX_PASSWORD=ADMIN_PASSWORD,
        QUATRIX_TOTP_SECRET=admin.totp_secret,
    )
    journal = tmp_path / "reset.journal"
    args = ["mfa", "reset", "--all", "--journal", str(journal), "--concurrency", "1"]
    fake.controls.fail_next("server_error", 5, path="*/user/reset-mfa")
    first = CliRunner().invoke(quatrix_app(clock=clock), [*args, "--yes", "--json"], env=env)
    assert first.exit_code == 1, first.output
    assert json.loads(first.stdout)["done"] == 7

    person = Confirming()
    second = CliRunner().invoke(quatrix_app(clock=clock, prompter=person), args, env=env)
    assert second.exit_code == 0, second.output
    assert person.questions == [
        f"This will reset 2FA for 5 users on {url} (7 already done in the journal). Continue?"
    ]
    assert fake.ledger.keys("user.reset-mfa") == {u.id for u in users}
