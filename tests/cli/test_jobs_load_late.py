"""The batch commands' help starts without the jobs modules (``quatrix_async.jobs``,
``metalcloud_async.jobs``, ``mfa_common.batch``): they load only when a batch command runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_start_up import ALLOWED, _start

JOBS = ("quatrix_async.jobs", "metalcloud_async.jobs", "mfa_common.batch")


@pytest.mark.parametrize(
    ("package", "args"),
    [
        ("quatrix_async", ["mfa", "reset", "--help"]),
        ("quatrix_async", ["mfa", "set", "-h"]),
        ("quatrix_async", ["apply", "--help"]),
        ("metalcloud_async", ["users", "limits", "set", "--help"]),
        ("metalcloud_async", ["users", "force-2fa-reenrol", "--help"]),
    ],
)
def test_batch_command_help_loads_no_jobs_module(package: str, args: list[str], tmp_path: Path) -> None:
    result = _start(package, args, {}, tmp_path)
    assert result["code"] in (0, None), result
    assert "--dry-run" in result["stdout"] or "plan" in result["stdout"]
    assert not [m for m in result["own"] if m.startswith(JOBS)]
    assert result["heavy"] == [] and sorted(set(result["own"]) - ALLOWED) == []


def test_a_batch_command_that_runs_loads_its_jobs_module(tmp_path: Path) -> None:
    # The check can fail: a command that runs its job shows the module (here it stops at the
    # server check, after reading the CSV with the job's parser).
    csv = tmp_path / "users.csv"
    csv.write_text("email\na@b.test\n")
    env = {"QUATRIX_HOST": "http://127.0.0.1:9", "QUATRIX_EMAIL": "a@b.test", "QUATRIX_PASSWORD": "x-pass-1"}
    result = _start("quatrix_async", ["mfa", "reset", "--csv", str(csv), "--dry-run"], env, tmp_path)
    assert "quatrix_async.jobs" in result["own"] and "mfa_common.batch.jobs" in result["own"]
