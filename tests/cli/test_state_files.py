"""The command-line tools' state on disk, tried as a hostile local environment would: saved
sessions, the login record, the TOTP step state, plans, journals and the state kept beside them.

Every state file refuses a link planted at its path (never written through, a dangling one never
creates its target), a file of a format this version does not know is refused and kept, an
unusable state directory is named with the fix, a run that cannot start says so with its own
exit status before any login, and concurrent processes lose nothing.
"""

from __future__ import annotations

import json
import os
import select
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app as metalcloud_app
from metalcloud_async.testing import MetalCloudFake
from mfa_common.cli import CredentialStore
from mfa_common.cli.errors import EXIT_BUSY, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_STATE, EXIT_USAGE
from mfa_common.clock import FakeClock
from quatrix_async.cli import build_app as quatrix_app
from quatrix_async.testing import QuatrixFake
from tests.planted_links import KINDS, assert_untouched, plant

from .conftest import PYTHON, REPO, START, finish, start, subprocess_env
from .test_terminal import TIMEOUT, Gate

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX links, permissions and locks")

PASSWORD = "admin-pass-Quatrix-1"
HERE = Path(__file__).parent


class Requests:
    """ASGI middleware: every HTTP request that reaches the fake, as ``(method, path)``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)

    def logins(self) -> list[tuple[str, str]]:
        return [r for r in self.seen if r[1].endswith("/session/login")]


class World:
    def __init__(self, socket_server: Any, base_env: dict[str, str | None], tmp_path: Path) -> None:
        swap, self.url = socket_server
        self.clock = FakeClock(START)
        self.fake = QuatrixFake(clock=self.clock, seed=31)
        self.requests = Requests(self.fake)
        swap.app = self.requests
        self.admin = self.fake.add_user(email="admin@acme.test", password=PASSWORD, mfa=True, admin=True)
        self.users = [
            self.fake.add_user(email=f"u{i}@acme.test", password="user-pass-2", mfa=True) for i in range(4)
        ]
        self.env = dict(
            base_env,
            QUATRIX_HOST=self.url,
            QUATRIX_EMAIL=self.admin.email,
            QUATRIX_PASSWORD=PASSWORD,
            QUATRIX_TOTP_SECRET=self.admin.totp_secret,
        )
        self.state = Path(str(base_env["XDG_STATE_HOME"])) / "quatrix-async"
        self.steps = Path(os.environ["MFA_SDKS_STATE_DIR"])
        self.tmp = tmp_path

    def invoke(self, args: list[str], **env: str | None) -> Any:
        result = CliRunner().invoke(quatrix_app(clock=self.clock), args, env={**self.env, **env})
        assert "Traceback" not in result.output
        return result

    def plan(self, name: str, users: list[Any]) -> Path:
        csv_path = self.tmp / f"{name}.csv"
        csv_path.write_text("email\n" + "".join(f"{u.email}\n" for u in users))
        plan = self.tmp / name
        made = self.invoke(["mfa", "reset", "--csv", str(csv_path), "--plan", str(plan)])
        assert made.exit_code == 0, made.output
        return plan


@pytest.fixture
def world(socket_server: Any, base_env: dict[str, str | None], tmp_path: Path) -> World:
    return World(socket_server, base_env, tmp_path)


# Each case: the file's path in a world, and the command that would read or write it.
Case = tuple[Callable[[World], Path], Callable[[World, Path], list[str]]]


def _apply(w: World, link: Path) -> list[str]:
    plan = w.plan("reset.plan", w.users[:2])
    return ["apply", str(plan), "--yes", "--journal", str(w.tmp / "reset.journal")]


CASES: dict[str, Case] = {
    "credentials.json": (lambda w: w.state / "credentials.json", lambda w, link: ["auth", "login"]),
    "credentials.json.lock": (lambda w: w.state / "credentials.json.lock", lambda w, link: ["auth", "login"]),
    "logins.json": (lambda w: w.state / "logins.json", lambda w, link: ["profile"]),
    "totp-steps.json": (lambda w: w.steps / "totp-steps.json", lambda w, link: ["profile"]),
    "totp-steps.json.lock": (lambda w: w.steps / "totp-steps.json.lock", lambda w, link: ["profile"]),
    "journal": (lambda w: w.tmp / "reset.journal", _apply),
    "journal lock": (lambda w: w.tmp / "reset.journal.lock", _apply),
    "journal before-state": (lambda w: w.tmp / "reset.journal.before.json", _apply),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(CASES))
def test_a_link_at_a_state_file_is_refused_and_never_followed(world: World, case: str, kind: str) -> None:
    where, command = CASES[case]
    link = where(world)
    target = world.tmp / "elsewhere" / "victim.json"
    args = command(world, link)  # makes the plan first, where the command needs one
    plant(link, target, kind)
    world.requests.seen.clear()
    result = world.invoke(args)
    assert result.exit_code == EXIT_STATE, result.output
    assert str(link) in result.stderr and "symbolic link" in result.stderr
    assert link.is_symlink()
    assert_untouched(target, kind)
    assert world.requests.logins() == [], "a login was spent before the state was checked"
    assert world.fake.ledger.entries() == []


def test_a_plan_behind_a_link_is_refused(world: World) -> None:
    plan = world.plan("reset.plan", world.users[:2])
    link = world.tmp / "linked.plan"
    link.symlink_to(plan)
    world.requests.seen.clear()
    result = world.invoke(["apply", str(link), "--yes"])
    assert result.exit_code == EXIT_STATE, result.output
    assert str(link) in result.stderr and "symbolic link" in result.stderr
    assert world.requests.seen == []


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"format": 7, "credentials": {}, "profiles": {"later": "version"}}, "newer version"),
        ([{"url": "https://q.example", "secret": "kept"}], "not a saved-sessions file"),
        ({"credentials": []}, "not a saved-sessions file"),
    ],
    ids=["future format", "a list", "no format"],
)
def test_saved_sessions_this_version_cannot_read_are_refused_and_kept(
    world: World, document: Any, words: str
) -> None:
    path = world.state / "credentials.json"
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    before = path.read_bytes()
    result = world.invoke(["auth", "login"])
    assert result.exit_code == EXIT_STATE, result.output
    assert str(path) in result.stderr and words in result.stderr
    assert path.read_bytes() == before
    assert world.requests.logins() == []


def test_a_login_record_of_another_shape_is_refused_and_kept(world: World) -> None:
    path = world.state / "logins.json"
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_text('{"format": 3, "logins": []}')
    path.chmod(0o600)
    result = world.invoke(["profile"])
    assert result.exit_code == EXIT_STATE, result.output
    assert str(path) in result.stderr
    assert path.read_text() == '{"format": 3, "logins": []}'
    assert world.requests.logins() == []


def test_the_login_record_is_owner_only(world: World) -> None:
    assert world.invoke(["profile"]).exit_code == 0
    path = world.state / "logins.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)  # as earlier versions wrote it: nothing secret, so ours is tightened
    assert world.invoke(["profile"]).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(path.read_text())
    assert record["format"] == 2 and [len(times) for times in record["logins"].values()] == [2]


@pytest.mark.parametrize("tool", ["quatrix-async", "metalcloud-async"])
def test_an_unusable_state_directory_names_the_path_and_the_fix(
    world: World, socket_server: Any, base_env: dict[str, str | None], tool: str
) -> None:
    """A regular file where the state directory belongs (refused as root as well, where a mode
    alone stops nothing): the error names the directory and the setting that moves it, exit 74,
    and no login is spent on a session that could not be saved."""
    blocker = world.tmp / "blocker"
    blocker.write_text("")
    if tool == "quatrix-async":
        result = world.invoke(["auth", "login"], XDG_STATE_HOME=str(blocker))
        assert world.requests.logins() == []
    else:
        swap, url = socket_server
        fake = MetalCloudFake(clock=FakeClock(START))
        requests = Requests(fake)
        swap.app = requests
        admin = fake.add_user("admin@metal.test", "admin-pass-Metal-1", access_level="admin")
        env = dict(
            base_env, METALCLOUD_URL=url, METALCLOUD_API_KEY=admin.api_key, XDG_STATE_HOME=str(blocker)
        )
        result = CliRunner().invoke(metalcloud_app(), ["auth", "login"], env=env)
        assert requests.seen == []
    assert result.exit_code == EXIT_STATE, result.output
    assert str(blocker / tool) in result.stderr
    assert "XDG_STATE_HOME" in result.stderr
    assert "PermissionError" not in result.stderr and "Traceback" not in result.output


def test_a_state_directory_of_another_user_is_refused(world: World) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    world.state.mkdir(parents=True, mode=0o700)
    os.chown(world.state, 65534, 65534)
    result = world.invoke(["auth", "login"])
    assert result.exit_code == EXIT_STATE, result.output
    assert str(world.state) in result.stderr and "another user" in result.stderr
    assert list(world.state.iterdir()) == []
    assert world.requests.logins() == []


def test_a_read_only_state_directory_is_refused_when_not_root(world: World) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only directory anyway; see the cases above")
    world.state.mkdir(parents=True, mode=0o500)
    try:
        result = world.invoke(["auth", "login"])
    finally:
        world.state.chmod(0o700)
    assert result.exit_code == EXIT_STATE, result.output
    assert str(world.state) in result.stderr and "XDG_STATE_HOME" in result.stderr


# --------------------------------------------------------------------------- journals


def test_a_second_apply_on_a_journal_in_use_is_refused_before_any_login(
    socket_server: Any, base_env: dict[str, str | None], tmp_path: Path
) -> None:
    """Run A holds the journal (its first reset is held on the server); run B of the same plan
    and journal is refused with its own exit status, sends nothing (no Basic login, no code
    step) and leaves the state A keeps beside the journal as it was. A then finishes alone."""
    swap, url = socket_server
    fake = QuatrixFake(seed=41)  # the real clock: run A is another process
    admin = fake.add_user(email="admin@acme.test", password=PASSWORD, pin="97531", admin=True)
    users = [fake.add_user(email=f"r{i}@acme.test", password="user-pass-2", mfa=True) for i in range(3)]
    gate = Gate(fake, "/user/reset-mfa", after=1)
    requests = Requests(gate)
    swap.app = requests
    env = dict(
        base_env, QUATRIX_HOST=url, QUATRIX_EMAIL=admin.email, QUATRIX_PASSWORD=PASSWORD, QUATRIX_PIN="97531"
    )
    plan = tmp_path / "reset.plan"
    made = CliRunner().invoke(quatrix_app(), ["mfa", "reset", "--all", "--plan", str(plan)], env=env)
    assert made.exit_code == 0, made.output
    journal = tmp_path / "reset.journal"
    beside = tmp_path / "reset.journal.before.json"
    args = ["apply", str(plan), "--yes", "--concurrency", "1", "--journal", str(journal)]
    run_a = start(
        ["quatrix_async", *args, "--json"], subprocess_env({k: v for k, v in env.items() if v is not None})
    )
    try:
        assert gate.reached.wait(TIMEOUT), "run A never reached its first reset"
        state_beside, journal_before = beside.read_bytes(), journal.read_bytes()
        requests.seen.clear()
        run_b = CliRunner().invoke(quatrix_app(), args, env=env)
        b_requests = list(requests.seen)
    finally:
        gate.release.set()
    a = finish(run_a)
    assert run_b.exit_code == EXIT_BUSY, run_b.output
    assert str(journal) in run_b.stderr and "another run" in run_b.stderr
    assert b_requests == [], "the refused run talked to the server"
    assert beside.read_bytes() == state_beside
    assert journal.read_bytes()[: len(journal_before)] == journal_before
    assert a.returncode == 0, a.stderr
    assert json.loads(a.stdout)["done"] == len(users)
    assert fake.ledger.duplicates("user.reset-mfa") == {}


def test_a_journal_reused_with_another_plan_is_refused(world: World) -> None:
    first = world.plan("first.plan", world.users[:2])
    second = world.plan("second.plan", world.users)
    journal = world.tmp / "shared.journal"
    done = world.invoke(["apply", str(first), "--yes", "--json", "--journal", str(journal)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["done"] == 2
    kept = journal.read_bytes()
    world.requests.seen.clear()
    reused = world.invoke(["apply", str(second), "--yes", "--json", "--journal", str(journal)])
    assert reused.exit_code == EXIT_STATE, reused.output
    assert str(journal) in reused.stderr and "made for another" in reused.stderr
    assert world.requests.seen == []
    assert journal.read_bytes() == kept
    assert world.fake.ledger.keys("user.reset-mfa") == {u.id for u in world.users[:2]}
    resumed = world.invoke(["apply", str(first), "--yes", "--json", "--journal", str(journal)])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["skipped_by_reason"] == {"already done (journal)": 2}


class Metal:
    def __init__(self, socket_server: Any, base_env: dict[str, str | None], tmp_path: Path) -> None:
        swap, url = socket_server
        self.fake = MetalCloudFake(clock=FakeClock(START))
        self.requests = Requests(self.fake)
        swap.app = self.requests
        self.root = self.fake.add_user("admin@metal.test", "admin-pass-Metal-1", access_level="admin")
        self.env = dict(base_env, METALCLOUD_URL=url, METALCLOUD_API_KEY=self.root.api_key)
        self.tmp = tmp_path

    def run(self, *args: str) -> Any:
        result = CliRunner().invoke(metalcloud_app(), list(args), env=self.env)
        assert "Traceback" not in result.output
        return result

    def csv(self, name: str, text: str) -> str:
        path = self.tmp / name
        path.write_text(text)
        return str(path)


@pytest.fixture
def metal(socket_server: Any, base_env: dict[str, str | None], tmp_path: Path) -> Metal:
    return Metal(socket_server, base_env, tmp_path)


def test_a_journal_reused_with_a_changed_csv_is_refused(metal: Metal) -> None:
    target = metal.fake.add_user("t@metal.test", "pw-target-123")
    limits = metal.csv("l.csv", f"user,infrastructure_active_max_count\n{target.id},2\n")
    journal = str(metal.tmp / "limits.journal")
    first = metal.run("users", "limits", "set", "--csv", limits, "--journal", journal, "--yes", "--json")
    assert first.exit_code == 0, first.output
    assert target.limits == {"infrastructureActiveMaxCount": 2}
    metal.csv("l.csv", f"user,infrastructure_active_max_count\n{target.id},5\n")  # edited since
    metal.requests.seen.clear()
    again = metal.run("users", "limits", "set", "--csv", limits, "--journal", journal, "--yes", "--json")
    assert again.exit_code == EXIT_STATE, again.output
    assert journal in again.stderr and "made for another" in again.stderr
    assert metal.requests.seen == []
    assert target.limits == {"infrastructureActiveMaxCount": 2}
    fresh = metal.run("users", "limits", "set", "--csv", limits, "--yes", "--json")  # a new journal
    assert fresh.exit_code == 0, fresh.output
    assert target.limits == {"infrastructureActiveMaxCount": 5}


def test_two_csv_rows_for_one_user_with_different_values_are_refused(metal: Metal) -> None:
    target = metal.fake.add_user("t@metal.test", "pw-target-123")
    rows = f"user,infrastructure_active_max_count\n{target.id},2\n{target.id},7\n"
    limits = metal.csv("l.csv", rows)
    metal.requests.seen.clear()
    result = metal.run("users", "limits", "set", "--csv", limits, "--yes", "--json")
    assert result.exit_code == EXIT_USAGE, result.output
    assert "line 3" in result.stderr and "line 2" in result.stderr
    assert metal.requests.seen == [] and target.limits == {}
    same = metal.csv("same.csv", f"user,infrastructure_active_max_count\n{target.id},2\n{target.id},2\n")
    repeated = metal.run("users", "limits", "set", "--csv", same, "--yes", "--json")
    assert repeated.exit_code == 0, repeated.output  # the same values twice: one write
    assert target.limits == {"infrastructureActiveMaxCount": 2}


# --------------------------------------------------------------------------- saved sessions


def _line(proc: subprocess.Popen[str]) -> str:
    """The child's next line on stdout, within TIMEOUT ("" if it ended without one)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    assert ready, "the child said nothing in time"
    return proc.stdout.readline().strip()


def _saver(directory: Path, url: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, str(HERE / "_session_saver.py"), str(directory), url, mode],
        cwd=REPO,
        env=subprocess_env({}),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_saving_sessions_at_once_lose_neither(tmp_path: Path) -> None:
    """Process A has read the file and is about to write it back with its session; process B
    saves another session at that moment. B must wait for A (it reports finding the store
    locked) and both sessions survive; without a lock B's session is lost under A's write."""
    directory = tmp_path / "state"
    first = _saver(directory, "https://a.example", "pause")
    second: subprocess.Popen[str] | None = None
    try:
        assert _line(first) == "read"
        second = _saver(directory, "https://b.example", "report")
        seen = _line(second)
        assert first.stdin is not None
        first.stdin.write("go\n")
        first.stdin.flush()
        a = finish(first)
        b = finish(second)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert seen == "blocked", "B never met A's lock: the saves were not concurrent"
    assert CredentialStore("tool", directory).urls() == ["https://a.example", "https://b.example"]


# --------------------------------------------------------------------------- exit codes


def test_could_not_start_has_its_own_documented_exit_codes() -> None:
    from docs_hooks.cli_reference import render
    from mfa_common.cli.reference import exit_code_table

    codes = [EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY, EXIT_STATE, EXIT_INTERRUPTED]
    assert len(set(codes)) == len(codes)
    table = exit_code_table()
    page = render((REPO / "docs" / "cli.md").read_text(encoding="utf-8"))
    for code in codes:
        assert f"| {code} |" in table and f"| {code} |" in page
    assert "another run holds the journal" in page
    assert "local state" in page
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert f"{EXIT_BUSY} another run holds the journal" in readme
    assert f"{EXIT_STATE} the local state cannot be used" in readme
