"""The README's first command runs the demo; this proves a small version of it still works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end_and_loses_nothing() -> None:
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.demo",
            "--users",
            "300",
            "--metalcloud-users",
            "30",
            "--latency",
            "0.01",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for act in (
        "1. Enrol TOTP",
        "2. Log in through the MFA step",
        "3. Lose the authenticator",
        "4. Batch",
        "5. MetalCloud",
    ):
        assert act in out
    assert "1 password login, 1 MFA exchange" in out
    assert "nothing lost, nothing applied twice" in out
    assert "Demo finished" in out
    assert "correct-horse-7" not in out + result.stderr
