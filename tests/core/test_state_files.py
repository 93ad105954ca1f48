"""The SDK's own state files (the recovery-code store, the batch journal and its lock, the TOTP
step state and its lock) never follow a link, refuse what is not theirs, and name the path.

Each case plants a symbolic link at the file's path, to an existing file (which must stay as it
was) or to nowhere (which must not be created), and checks the refusal names the path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from mfa_common.batch import Journal, run_batch
from mfa_common.errors import StateFileError
from mfa_common.recovery_codes import RecoveryCodeFormat, RecoveryCodeStore
from mfa_common.replay_state import FileStepRegistry
from mfa_common.totp import Totp
from tests.planted_links import KINDS, assert_untouched, plant

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX links and permissions")

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
CODES = ["abcde-12345", "0f1e2-3d4c5"]


async def _journaled(journal: Path) -> None:
    async def op(key: str) -> None:
        pass

    await run_batch(["a"], op, journal=journal)


def _recovery_new(path: Path) -> None:
    RecoveryCodeStore(CODES, format=RecoveryCodeFormat.GITHUB, path=path)


def _recovery_replace(path: Path) -> None:
    RecoveryCodeStore(CODES, format=RecoveryCodeFormat.GITHUB, path=path, replace=True)


def _recovery_load(path: Path) -> None:
    RecoveryCodeStore.load(path)


def _journal(path: Path) -> None:
    anyio.run(_journaled, path)


def _journal_lock(path: Path) -> None:
    anyio.run(_journaled, path.with_name(path.name.removesuffix(".lock")))


def _steps(path: Path) -> None:
    FileStepRegistry(path).claim(Totp(SECRET), 1)


def _steps_lock(path: Path) -> None:
    FileStepRegistry(path.with_name(path.name.removesuffix(".lock"))).claim(Totp(SECRET), 1)


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "recovery store (new)": ("codes.json", _recovery_new),
    "recovery store (replace=True)": ("codes.json", _recovery_replace),
    "recovery store (load)": ("codes.json", _recovery_load),
    "batch journal": ("run.journal", _journal),
    "batch journal lock": ("run.journal.lock", _journal_lock),
    "TOTP step state": ("totp-steps.json", _steps),
    "TOTP step state lock": ("totp-steps.json.lock", _steps_lock),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(CASES))
def test_a_link_at_a_state_file_is_refused_and_never_followed(tmp_path: Path, case: str, kind: str) -> None:
    name, use = CASES[case]
    link = tmp_path / name
    target = tmp_path / "elsewhere" / "victim.json"
    plant(link, target, kind)
    with pytest.raises(StateFileError) as info:
        use(link)
    assert str(link) in str(info.value)
    assert "symbolic link" in str(info.value)
    assert link.is_symlink()  # left in place for the person to look at
    assert_untouched(target, kind)
    assert sorted(p.name for p in target.parent.iterdir()) == (["victim.json"] if kind == "to a file" else [])


def test_a_state_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    path = tmp_path / "totp-steps.json"
    FileStepRegistry(path).claim(Totp(SECRET), 1)
    os.chown(path, 65534, 65534)
    before = path.read_bytes()
    with pytest.raises(StateFileError, match="belongs to another user") as info:
        FileStepRegistry(path).claim(Totp(SECRET), 2)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_a_fifo_at_a_state_file_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    os.mkfifo(path, 0o600)
    with pytest.raises(StateFileError, match="not a regular file"):
        RecoveryCodeStore.load(path)


def test_an_unwritable_state_directory_names_the_path_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A regular file where the state directory should be: refused as root too (a mode alone
    would not stop root)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("MFA_SDKS_STATE_DIR", str(blocker / "mfa-sdks"))
    with pytest.raises(StateFileError) as info:
        FileStepRegistry().claim(Totp(SECRET), 1)
    message = str(info.value)
    assert str(blocker / "mfa-sdks") in message
    assert "MFA_SDKS_STATE_DIR" in message


def test_a_step_state_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    directory = tmp_path / "mfa-sdks"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    with pytest.raises(StateFileError, match="belongs to another user") as info:
        FileStepRegistry(directory / "totp-steps.json").claim(Totp(SECRET), 1)
    assert str(directory) in str(info.value)
    assert list(directory.iterdir()) == []


def test_a_journal_of_a_newer_format_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    path.write_text('{"journal": 9, "binding": "x"}\n{"key": "a", "state": "done", "ts": 1}\n')
    path.chmod(0o600)
    before = path.read_bytes()
    with pytest.raises(StateFileError, match="newer version") as info:
        _journal(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_a_journal_is_bound_to_what_it_was_made_for(tmp_path: Path) -> None:
    """A journal made for one run refuses another (another plan, CSV or server), before anything
    is locked or written; the same run resumes it."""
    from mfa_common.batch import JournalMismatchError

    path = tmp_path / "run.journal"
    ran: list[str] = []

    async def op(key: str) -> None:
        ran.append(key)

    async def run(binding: str, items: list[str]) -> None:
        await run_batch(items, op, journal=Journal(path, binding=binding))

    anyio.run(run, "plan-1", ["a"])
    before = path.read_bytes()
    with pytest.raises(JournalMismatchError, match="made for another run") as info:
        anyio.run(run, "plan-2", ["a", "b"])
    assert str(path) in str(info.value)
    assert path.read_bytes() == before and ran == ["a"]
    with pytest.raises(JournalMismatchError), Journal(path, binding="plan-2").hold():
        pass
    anyio.run(run, "plan-1", ["a", "b"])  # the same run resumes: a is done already
    assert ran == ["a", "b"]
