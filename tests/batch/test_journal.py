"""The journal: resume after a kill or a cancellation, unknown outcomes, file hygiene."""

from __future__ import annotations

import collections
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from mfa_common.batch import (
    OUTCOME_UNKNOWN,
    ItemState,
    Journal,
    JournalLockedError,
    Skip,
    run_batch,
)
from mfa_common.batch.runner import DUPLICATE_KEY
from mfa_common.errors import APITimeoutError, InvalidInputError, MfaCodeRejectedError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ledger_counts(path: Path) -> collections.Counter[str]:
    if not path.exists():
        return collections.Counter()
    return collections.Counter(path.read_text().split())


def make_apply(ledger: Path):  # type: ignore[no-untyped-def]
    """An operation whose effect is one ledger line per applied write."""

    async def apply(key: str) -> None:
        await anyio.sleep(0.001)
        with ledger.open("a") as handle:
            handle.write(f"{key}\n")

    return apply


def make_verify(ledger: Path):  # type: ignore[no-untyped-def]
    """Asks the "server" (the ledger) whether a write was applied."""

    async def verify(key: str) -> bool | None:
        return ledger_counts(ledger)[key] > 0

    return verify


# --------------------------------------------------------------------------- kill -9


@pytest.mark.anyio
async def test_resume_after_kill_never_repeats_a_completed_write(tmp_path: Path, anyio_backend: str) -> None:
    journal_path, ledger = tmp_path / "batch.journal", tmp_path / "ledger"
    count = 400
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "_batch_child.py"),
            str(journal_path),
            str(ledger),
            str(count),
            anyio_backend,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with anyio.fail_after(15):
            while True:
                text = journal_path.read_text() if journal_path.exists() else ""
                if text.count('"state":"done"') >= 120:
                    break
                assert child.poll() is None, child.stderr.read() if child.stderr else b""
                await anyio.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    journal = Journal(journal_path)
    before = journal.read()
    done_before = sum(1 for s in before.values() if s is ItemState.DONE)
    unknown_before = {k for k, s in before.items() if s is ItemState.UNKNOWN}
    assert 120 <= done_before < count
    assert unknown_before, "the kill must have left writes in flight"
    applied_before = ledger_counts(ledger)
    assert set(applied_before) >= {k for k, s in before.items() if s is ItemState.DONE}

    keys = [f"user-{i:04d}" for i in range(count)]
    summary = await run_batch(keys, make_apply(ledger), journal=journal, verify_unknown=make_verify(ledger))

    applied = ledger_counts(ledger)
    assert set(applied) == set(keys)  # every item applied...
    assert max(applied.values()) == 1  # ...exactly once across both runs
    assert summary.total == count
    assert summary.skipped == done_before
    assert summary.done == count - done_before
    assert summary.failed == summary.unknown == 0
    assert set(journal.read().values()) == {ItemState.DONE}


# --------------------------------------------------------------------------- cancellation


@pytest.mark.anyio
async def test_cancel_scope_leaves_a_consistent_journal_and_the_next_run_completes(tmp_path: Path) -> None:
    journal_path, ledger = tmp_path / "j", tmp_path / "ledger"
    in_flight = 0

    async def slow_apply(key: str) -> None:
        nonlocal in_flight
        in_flight += 1
        try:
            n = int(key)
            # Some writes land and then hang (the reply is lost); the others hang before landing.
            if n % 2 == 0 and n >= 20:
                with ledger.open("a") as handle:
                    handle.write(f"{key}\n")
            await anyio.sleep(0 if n < 20 else 30)
            if n < 20:
                with ledger.open("a") as handle:
                    handle.write(f"{key}\n")
        finally:
            in_flight -= 1

    keys = [str(i) for i in range(100)]
    t0 = anyio.current_time()
    with anyio.CancelScope() as scope:

        async def cancel_soon() -> None:
            await anyio.sleep(0.2)
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_soon)
            await run_batch(keys, slow_apply, concurrency=8, journal=journal_path)
            pytest.fail("the cancellation must propagate out of run_batch")
    assert scope.cancelled_caught
    assert anyio.current_time() - t0 < 2.0  # prompt: the hanging writes were cancelled
    assert in_flight == 0

    records = lines(journal_path)  # every line parses
    states = Journal(journal_path).read()
    assert sum(1 for s in states.values() if s is ItemState.DONE) == 20
    assert sum(1 for s in states.values() if s is ItemState.UNKNOWN) == 8  # the 8 in flight
    assert all(r["state"] in {"started", "done"} for r in records)

    summary = await run_batch(
        keys, make_apply(ledger), journal=journal_path, verify_unknown=make_verify(ledger)
    )
    applied = ledger_counts(ledger)
    assert set(applied) == set(keys)
    assert max(applied.values()) == 1
    assert summary.skipped == 20
    assert summary.done == 80
    assert summary.ok


# --------------------------------------------------------------------------- unknown outcomes


def write_journal(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


@pytest.mark.anyio
async def test_unknown_keys_are_verified_before_anything_is_repeated(tmp_path: Path) -> None:
    journal_path = tmp_path / "j"
    write_journal(
        journal_path,
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"key": "done", "state": "started", "ts": 1},
                {"key": "done", "state": "done", "ts": 1},
                {"key": "skipped", "state": "skipped", "reason": "x", "ts": 1},
                {"key": "failed", "state": "started", "ts": 1},
                {"key": "failed", "state": "failed", "reason": "ServerError: 500", "ts": 1},
                {"key": "applied", "state": "started", "ts": 1},
                {"key": "not-applied", "state": "started", "ts": 1},
                {"key": "cannot-tell", "state": "started", "ts": 1},
            ]
        ),
    )
    calls: list[str] = []
    verified: list[str] = []

    async def op(key: str) -> None:
        calls.append(key)

    async def verify(key: str) -> bool | None:
        verified.append(key)
        return {"applied": True, "not-applied": False}.get(key)

    keys = ["done", "skipped", "failed", "applied", "not-applied", "cannot-tell", "new"]
    summary = await run_batch(keys, op, journal=journal_path, verify_unknown=verify)
    assert sorted(calls) == ["failed", "new", "not-applied"]
    assert sorted(verified) == ["applied", "cannot-tell", "not-applied"]
    assert (summary.done, summary.skipped, summary.failed, summary.unknown) == (4, 2, 0, 1)
    assert summary.failures_by_reason[OUTCOME_UNKNOWN].example_keys == ("cannot-tell",)
    states = Journal(journal_path).read()
    assert states["applied"] is ItemState.DONE
    assert states["cannot-tell"] is ItemState.UNKNOWN  # still unknown, not "failed": never retried blindly

    # A third run without a verifier still does not repeat it...
    calls.clear()
    summary = await run_batch(keys, op, journal=journal_path)
    assert calls == []
    assert summary.unknown == 1
    # ...unless the caller says repeating is harmless (an idempotent operation).
    summary = await run_batch(keys, op, journal=journal_path, retry_unknown=True)
    assert calls == ["cannot-tell"]
    assert summary.unknown == 0
    assert Journal(journal_path).counts() == {"done": 6, "failed": 0, "skipped": 1, "unknown": 0}


@pytest.mark.anyio
async def test_verifier_errors_count_as_cannot_tell(tmp_path: Path) -> None:
    journal_path = tmp_path / "j"
    write_journal(journal_path, '{"key":"a","state":"started","ts":1}\n')
    calls: list[str] = []

    async def op(key: str) -> None:
        calls.append(key)

    async def verify(key: str) -> bool | None:
        raise APITimeoutError("GET /users/a timed out")

    summary = await run_batch(["a"], op, journal=journal_path, verify_unknown=verify)
    assert calls == []
    assert summary.unknown == 1
    assert (
        "verification failed: APITimeoutError" in summary.failures_by_reason[OUTCOME_UNKNOWN].example_message
    )


@pytest.mark.anyio
async def test_in_run_unknown_outcome_is_journaled_as_unknown(tmp_path: Path) -> None:
    journal_path = tmp_path / "j"

    async def op(key: str) -> None:
        raise APITimeoutError("POST /users/x/mfa timed out", request_sent=True)

    summary = await run_batch(["x"], op, journal=journal_path)
    assert summary.unknown == 1
    record = lines(journal_path)[-1]
    assert record["state"] == "failed" and record["unknown"] is True
    assert str(record["reason"]).startswith(OUTCOME_UNKNOWN)
    assert Journal(journal_path).read()["x"] is ItemState.UNKNOWN


# --------------------------------------------------------------------------- file hygiene


@pytest.mark.anyio
async def test_truncated_and_garbage_lines_are_tolerated(tmp_path: Path) -> None:
    journal_path = tmp_path / "j"
    write_journal(
        journal_path,
        '{"key":"a","state":"started","ts":1}\n'
        '{"key":"a","state":"done","ts":1}\n'
        "not json at all\n"
        '["a", "list"]\n'
        '{"key": 5, "state": "done"}\n'
        '{"key":"b","state":"started","ts":1}\n'
        '{"key":"b","state":"do',  # killed mid-write
    )
    calls: list[str] = []

    async def op(key: str) -> None:
        calls.append(key)

    async def verify(key: str) -> bool:
        return False

    summary = await run_batch(["a", "b", "c"], op, journal=journal_path, verify_unknown=verify)
    assert sorted(calls) == ["b", "c"]
    assert summary.skipped == 1 and summary.done == 2
    # The partial line was ended, so every line written after it stands alone and parses.
    raw = journal_path.read_text().splitlines()
    assert raw[6] == '{"key":"b","state":"do'
    assert all(json.loads(line)["key"] in {"b", "c"} for line in raw[7:])
    assert Journal(journal_path).read() == {"a": ItemState.DONE, "b": ItemState.DONE, "c": ItemState.DONE}


@pytest.mark.anyio
async def test_journal_is_owner_only_and_holds_no_secrets(tmp_path: Path) -> None:
    journal_path = tmp_path / "sub-j"
    users = [
        {"id": f"u{i}", "password": f"hunter2-{i}", "totp_secret": "JBSWY3DPEHPK3PXP"} for i in range(30)
    ]

    async def op(user: dict[str, str]) -> object:
        n = int(user["id"][1:])
        if n % 3 == 0:
            raise ValueError(f"bad password {user['password']}")
        if n % 3 == 1:
            raise MfaCodeRejectedError("code rejected", status_code=401)
        return Skip("already enrolled")

    summary = await run_batch(users, op, key=lambda u: u["id"], journal=journal_path)
    assert summary.failed == 20 and summary.skipped == 10
    mode = stat.S_IMODE(journal_path.stat().st_mode)
    assert mode == 0o600
    text = journal_path.read_text() + str(summary) + json.dumps(summary.as_dict())
    assert "hunter2" not in text
    assert "JBSWY3DP" not in text
    assert "password" not in text
    reasons = {r.get("reason") for r in lines(journal_path)}
    assert reasons == {None, "ValueError", "MfaCodeRejectedError: code rejected", "already enrolled"}


@pytest.mark.anyio
async def test_an_existing_world_readable_journal_is_tightened(tmp_path: Path) -> None:
    journal_path = tmp_path / "j"
    journal_path.write_text("")
    journal_path.chmod(0o644)

    async def op(key: str) -> None:
        pass

    await run_batch(["a"], op, journal=journal_path)
    assert stat.S_IMODE(journal_path.stat().st_mode) == 0o600


@pytest.mark.anyio
async def test_two_runs_cannot_share_a_journal(tmp_path: Path) -> None:
    journal_path = tmp_path / "j"
    first_running = anyio.Event()

    async def slow(key: str) -> None:
        first_running.set()
        await anyio.sleep(0.2)

    async def op(key: str) -> None:
        pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_batch(["a"], slow, journal=journal_path))
        await first_running.wait()
        with pytest.raises(JournalLockedError):
            await run_batch(["b"], op, journal=journal_path)
    # Released at the end of the first run.
    summary = await run_batch(["b"], op, journal=journal_path)
    assert summary.done == 1


@pytest.mark.anyio
async def test_journal_needs_a_key_for_structured_items(tmp_path: Path) -> None:
    async def op(item: dict[str, str]) -> None:
        pass

    with pytest.raises(InvalidInputError, match="key="):
        await run_batch([{"id": "a"}], op, journal=tmp_path / "j")


@pytest.mark.anyio
async def test_fsync_every_line_mode(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", fsync_interval=0)

    async def op(key: str) -> None:
        pass

    summary = await run_batch([str(i) for i in range(20)], op, journal=journal)
    assert summary.done == 20
    assert len(lines(tmp_path / "j")) == 40
    with pytest.raises(ValueError):
        Journal(tmp_path / "k", fsync_interval=-1)


@pytest.mark.anyio
async def test_a_journal_write_failure_stops_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfa_common.batch import JournalError
    from mfa_common.batch.journal import JournalWriter

    original = JournalWriter._append
    writes = 0

    def failing_append(self: JournalWriter, line: str) -> None:
        nonlocal writes
        writes += 1
        if writes > 10:
            raise JournalError("cannot write the batch journal: No space left on device")
        original(self, line)

    monkeypatch.setattr(JournalWriter, "_append", failing_append)
    calls = 0

    async def op(key: str) -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)

    with anyio.fail_after(5), pytest.raises(JournalError, match="No space"):
        await run_batch((str(i) for i in range(10_000)), op, concurrency=4, journal=tmp_path / "j")
    assert calls < 20  # no operation runs without its "started" line


# --------------------------------------------------------------------------- duplicates, path lock


@pytest.mark.anyio
async def test_a_duplicate_key_runs_once_and_is_reported(tmp_path: Path) -> None:
    journal_path = tmp_path / "j"
    ledger = tmp_path / "ledger"
    apply = make_apply(ledger)
    first = await run_batch(["a", "b", "a", "c", "a"], apply, journal=journal_path)
    assert ledger_counts(ledger) == {"a": 1, "b": 1, "c": 1}
    assert (first.done, first.skipped) == (3, 2)
    assert first.skipped_by_reason == {DUPLICATE_KEY: 2}
    # Resumed with the journal saying done: neither occurrence runs again.
    second = await run_batch(["a", "d", "a"], apply, journal=journal_path)
    assert ledger_counts(ledger) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert second.skipped_by_reason == {"already done (journal)": 1, DUPLICATE_KEY: 1}
    assert Journal(journal_path).read() == dict.fromkeys("abcd", ItemState.DONE)


@pytest.mark.anyio
async def test_a_journal_moved_away_mid_run_still_locks_its_path(tmp_path: Path) -> None:
    """Two runners on one path: the first holds the path even after its journal file was
    renamed, so the second cannot start and repeat the first one's writes."""
    journal_path = tmp_path / "j"
    ledger = tmp_path / "ledger"
    first_running = anyio.Event()
    release = anyio.Event()
    apply = make_apply(ledger)

    async def gated(key: str) -> None:
        first_running.set()
        await release.wait()
        await apply(key)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_batch(["a"], gated, journal=journal_path))
        await first_running.wait()
        journal_path.rename(tmp_path / "moved")
        with pytest.raises(JournalLockedError):
            await run_batch(["a"], apply, journal=journal_path)
        release.set()
    assert ledger_counts(ledger) == {"a": 1}
    assert stat.S_IMODE((tmp_path / "j.lock").stat().st_mode) == 0o600
