"""How the benchmark suite judges its figures: spreads, NOISY ratios, the exit status.

Pure functions over made-up runs; no timing is measured here.
"""

from __future__ import annotations

from typing import Any

from benchmarks import overhead
from benchmarks.__main__ import exit_status


def _runs(cpu: dict[str, list[float]], method: str = "get", conc: int = 16) -> list[dict[str, Any]]:
    runs = []
    for client, values in cpu.items():
        for rep, value in enumerate(values):
            runs.append(
                {
                    "client": client,
                    "method": method,
                    "conc": conc,
                    "rep": rep,
                    "requests": 3000,
                    "errors": 0,
                    "rps": 1000.0,
                    "cpu_us_per_req": value,
                    "p50_ms": 1.0,
                    "p99_ms": 2.0,
                    "server_cpu_us_per_req": 100.0,
                    "client_cpu_util": 1.0,
                }
            )
    return runs


def _result(cpu: dict[str, list[float]]) -> dict[str, Any]:
    runs = _runs(cpu)
    return {"runs": runs, "cells": overhead.aggregate(runs)}


def _line(lines: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(t for t in lines if t["name"] == name)


def test_a_cell_is_the_median_of_its_rounds_and_keeps_their_spread() -> None:
    result = _result({"sdk": [150.0, 140.0, 180.0], "aiohttp": [100.0, 100.0, 100.0]})
    sdk = overhead.cell(result, "sdk", "get", 16)
    assert sdk is not None
    assert sdk["cpu_us_per_req"] == 150.0
    assert sdk["cpu_spread"] == 180.0 / 140.0


def test_from_five_rounds_the_spread_leaves_out_one_outlier_at_each_end() -> None:
    assert overhead.spread([100.0, 250.0, 104.0, 102.0, 60.0]) == 104.0 / 100.0
    assert overhead.spread([100.0, 250.0, 60.0, 102.0]) == 250.0 / 60.0
    # Two slow rounds of five are not an outlier: the cell stays noisy.
    assert overhead.spread([100.0, 101.0, 102.0, 140.0, 150.0]) == 140.0 / 101.0


def test_the_aiohttp_target_is_one_and_a_half_times_the_floor() -> None:
    lines = overhead.targets(_result({"sdk": [149.0, 149.0, 149.0], "aiohttp": [100.0, 100.0, 100.0]}))
    assert _line(lines, "sdk_asyncio_vs_aiohttp_cpu_get_c16")["passed"] is True
    lines = overhead.targets(_result({"sdk": [151.0, 151.0, 151.0], "aiohttp": [100.0, 100.0, 100.0]}))
    line = _line(lines, "sdk_asyncio_vs_aiohttp_cpu_get_c16")
    assert line["passed"] is False
    assert line["timing"] is True
    assert "(<= 1.50; spreads 1.00x/1.00x, rounds 1.51-1.51x)" in line["figure"]


def test_a_ratio_from_a_noisy_cell_says_so_and_the_spread_target_fails() -> None:
    lines = overhead.targets(_result({"sdk": [140.0, 145.0, 190.0], "aiohttp": [100.0, 100.0, 100.0]}))
    ratio = _line(lines, "sdk_asyncio_vs_aiohttp_cpu_get_c16")
    assert ratio["passed"] is True
    assert ratio["noisy"] is True
    assert ratio["figure"].endswith(" NOISY)")
    spread = _line(lines, "overhead_spread")
    assert spread["passed"] is False
    assert "sdk GET c16 1.36x" in spread["figure"]


def test_quiet_cells_pass_the_spread_target() -> None:
    lines = overhead.targets(_result({"sdk": [140.0, 145.0, 150.0], "aiohttp": [100.0, 110.0, 120.0]}))
    assert _line(lines, "overhead_spread")["passed"] is True
    assert _line(lines, "sdk_asyncio_vs_aiohttp_cpu_get_c16")["noisy"] is False


def test_the_spread_of_fewer_than_three_rounds_is_not_judged() -> None:
    lines = overhead.targets(_result({"sdk": [100.0, 200.0], "aiohttp": [100.0, 100.0]}))
    assert _line(lines, "overhead_spread")["passed"] is None


def test_failed_runs_and_requests_fail_the_errors_target() -> None:
    result = _result({"sdk": [150.0], "aiohttp": [100.0]})
    assert _line(overhead.targets(result), "overhead_errors")["passed"] is True
    result["runs"].append({"client": "sdk", "method": "get", "conc": 16, "rep": 1, "error": "exit 1: boom"})
    line = _line(overhead.targets(result), "overhead_errors")
    assert line["passed"] is False
    assert "timing" not in line
    assert "boom" in line["figure"]


def test_a_failed_target_makes_the_run_exit_1_and_a_quick_run_enforces_only_counts() -> None:
    timing = {"name": "ratio", "figure": "", "value": 2.0, "passed": False, "timing": True}
    count = {"name": "logins", "figure": "", "value": 3, "passed": False}
    fine = {"name": "fine", "figure": "", "value": 1, "passed": True}
    info = {"name": "info", "figure": "", "value": 1, "passed": None}
    assert exit_status([fine, info], quick=False) == 0
    assert exit_status([fine, timing], quick=False) == 1
    assert exit_status([fine, count], quick=False) == 1
    assert exit_status([fine, timing], quick=True) == 0
    assert exit_status([fine, timing, count], quick=True) == 1


def test_warm_up_rounds_run_first_and_are_not_kept(monkeypatch: Any) -> None:
    import contextlib

    ran: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def server() -> Any:
        yield type("Server", (), {"base_url": "http://127.0.0.1:1", "pid": 1})()

    def run_json(cmd: list[str], timeout: float) -> dict[str, Any]:
        client = cmd[cmd.index("--client") + 1]
        ran.append((client, len(ran)))
        return {"requests": 10, "rps": 1.0, "cpu_us_per_req": 100.0 + len(ran)}

    monkeypatch.setattr(overhead, "uvicorn_server", server)
    monkeypatch.setattr(overhead, "run_json", run_json)
    monkeypatch.setattr(overhead, "_progress", lambda result: None)
    result = overhead.run(
        n=10, reps=2, concs=[16], methods=["get"], clients=["sdk", "aiohttp"], warmup_rounds=1
    )
    assert len(ran) == 6  # one untimed round, then two kept
    assert [r["rep"] for r in result["runs"]] == [0, 0, 1, 1]
    # The untimed round's figures (the first two runs: 101, 102) are in no cell.
    kept = {v for c in result["cells"] for v in c["cpu_us_per_req_all"]}
    assert kept == {103.0, 104.0, 105.0, 106.0}


def test_a_benchmark_run_keeps_its_totp_steps_out_of_the_users_state(monkeypatch: Any) -> None:
    import os

    import benchmarks.__main__ as entry

    seen: list[str] = []

    def fake_main(args: Any, argv: Any) -> int:
        seen.append(os.environ["MFA_SDKS_STATE_DIR"])
        assert os.path.isdir(seen[0])
        return 0

    monkeypatch.setenv("MFA_SDKS_STATE_DIR", "/nonexistent/users-own-state")
    monkeypatch.setattr(entry, "_main", fake_main)
    assert entry.main(["--quick", "--only", "login_storm"]) == 0
    assert seen and "mfa-bench-state-" in os.path.basename(seen[0])
    assert not os.path.exists(seen[0])  # removed after the run
