"""The benchmark scripts still run: a tiny overhead run against a real server on 127.0.0.1.

No performance figure is asserted; only that the suite starts its server, drives the clients,
and writes a results file with the expected shape and target lines. It runs with ``--quick``:
on a loaded machine a timing target may print FAIL, which a quick run reports without failing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("aiohttp")


def test_overhead_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        "--only",
        "overhead",
        "--requests",
        "50",
        "--concs",
        "1,4",
        "--reps",
        "1",
        "--clients",
        "sdk,raw_transport",
        "--methods",
        "get,post",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]

    results = json.loads((tmp_path / "results-quick.json").read_text())
    assert {"date", "command", "machine", "sections", "targets", "target_lines"} <= results.keys()
    assert {"nproc", "cpu_model", "python", "packages"} <= results["machine"].keys()
    overhead = results["sections"]["overhead"]
    cells = {(c["client"], c["method"], c["conc"]): c for c in overhead["cells"]}
    assert set(cells) == {
        (cl, m, c) for cl in ("sdk", "raw_transport") for m in ("get", "post") for c in (1, 4)
    }
    for cell in cells.values():
        assert cell["reps"] == 1, cell["errors"]
        assert cell["cpu_spread"] == 1.0
        assert cell["request_errors"] == 0
        for key in ("rps", "cpu_us_per_req", "p50_ms", "p99_ms"):
            assert isinstance(cell[key], float), key
    for run in overhead["runs"]:
        assert run["requests"] == 50

    names = {t["name"] for t in results["targets"]}
    assert "sdk_overhead_asyncio_get_c4" in names
    target_lines = [line for line in proc.stdout.splitlines() if line.startswith("TARGET ")]
    assert any(line.startswith("TARGET sdk_overhead_asyncio_post_c1: ") for line in target_lines)
    assert all(line.endswith((" PASS", " FAIL")) for line in target_lines)
    assert "TARGET overhead_errors: 0 failed runs, 0 failed requests" in proc.stdout
    # A partial run (--only) never rewrites the committed RESULTS.md.
    assert "wrote" not in proc.stdout
