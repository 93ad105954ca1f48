"""Cost of a code and of an import.

* TOTP: ``mfa_common.totp.Totp.code_at`` (object built once, as the SDK holds it) against
  ``pyotp.TOTP(secret).now()`` with a new object per call (what naive code does), plus pyotp
  with a reused object for reference; ``timeit``, median of repeats, µs per call.
* Import time: ``python -X importtime -c "import PKG"``, the top-level cumulative µs, median of
  3 fresh processes after one warm-up run (so bytecode caches exist).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import timeit
from typing import Any

from benchmarks._common import PYTHON, ROOT, child_env, emit, pinned, run_json

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 32 base32 characters, 160 bits
IMPORT_MODULES = ("mfa_common", "quatrix_async", "metalcloud_async")
REFERENCE_MODULES = ("httpx", "aiohttp")


def _timeit(stmt: Any, number: int, repeat: int) -> dict[str, float]:
    times = timeit.repeat(stmt, number=number, repeat=repeat, timer=time.perf_counter)
    per = sorted(t / number * 1e6 for t in times)
    return {"median_us": round(statistics.median(per), 3), "min_us": round(per[0], 3)}


def measure_totp(number: int, repeat: int) -> dict[str, Any]:
    """µs per code for the three variants (runs in the child process)."""
    import pyotp

    from mfa_common.totp import Totp

    totp = Totp(SECRET)
    reused = pyotp.TOTP(SECRET)
    ts = time.time()
    assert totp.code_at(ts) == reused.at(ts), "mfa_common and pyotp disagree"
    return {
        "number": number,
        "repeat": repeat,
        "mfa_common_code_at": _timeit(lambda: totp.code_at(ts), number, repeat),
        "pyotp_new_object_now": _timeit(lambda: pyotp.TOTP(SECRET).now(), number, repeat),
        "pyotp_reused_now": _timeit(lambda: reused.now(), number, repeat),
    }


def _import_cumulative_us(module: str, env: dict[str, str]) -> tuple[int | None, int, str | None]:
    """(cumulative µs of ``module``, modules imported, error) from one ``-X importtime`` run."""
    cmd = pinned([PYTHON, "-X", "importtime", "-c", f"import {module}"], 1)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        return None, 0, "timed out"
    if proc.returncode != 0:
        return None, 0, (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]
    value = None
    count = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        count += 1
        parts = [p.strip() for p in line[len("import time:") :].split("|")]
        if len(parts) == 3 and parts[2] == module:
            value = int(parts[1])
    return value, count, None


def measure_imports(modules: tuple[str, ...], runs: int) -> dict[str, Any]:
    """Median cumulative import µs per module (bytecode cached under a private prefix)."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        env = child_env()
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
        for module in modules:
            _import_cumulative_us(module, env)  # warm-up: writes the bytecode cache
            values: list[int] = []
            count = 0
            error = None
            for _ in range(runs):
                value, count, error = _import_cumulative_us(module, env)
                if value is None:
                    break
                values.append(value)
            if values:
                out[module] = {
                    "median_us": int(statistics.median(values)),
                    "runs_us": values,
                    "modules": count,
                }
            else:
                out[module] = {"error": error or "no importtime line"}
    return out


def run(*, number: int, repeat: int, import_runs: int) -> dict[str, Any]:
    """TOTP figures from a pinned child process, then import times."""
    totp = run_json(
        [PYTHON, "-m", "benchmarks.code_cost", "--child", "--number", str(number), "--repeat", str(repeat)],
        timeout=120,
    )
    imports = measure_imports(IMPORT_MODULES + REFERENCE_MODULES, import_runs)
    return {"totp": totp, "imports": imports, "import_runs": import_runs, "pycache": "private prefix, warm"}


# Import time a user pays before the first request (aiohttp and httpcore2 load on first use).
IMPORT_TARGETS_MS = {"quatrix_async": 120.0}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The import-time target; the other lines are informational."""
    out: list[dict[str, Any]] = []
    totp = result.get("totp", {})
    if "mfa_common_code_at" in totp:
        ours = totp["mfa_common_code_at"]["median_us"]
        naive = totp["pyotp_new_object_now"]["median_us"]
        out.append(
            {
                "name": "totp_code_cost",
                "figure": (
                    f"mfa_common {ours:.2f} us/code vs pyotp new-object {naive:.2f} us ({ours / naive:.2f}x)"
                ),
                "value": ours / naive,
                "passed": None,
            }
        )
    elif "error" in totp:
        out.append(
            {"name": "totp_code_cost", "figure": "ERROR " + totp["error"], "value": None, "passed": None}
        )
    for module in IMPORT_MODULES:
        entry = result.get("imports", {}).get(module, {})
        figure = (
            f"{entry['median_us'] / 1000:.1f} ms cumulative"
            if "median_us" in entry
            else entry.get("error", "?")
        )
        limit = IMPORT_TARGETS_MS.get(module)
        value = entry.get("median_us")
        passed = None
        if limit is not None and value is not None:
            figure += f" (<= {limit:.0f} ms)"
            passed = value / 1000 <= limit
        out.append({"name": f"import_{module}", "figure": figure, "value": value, "passed": passed})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if args.child:
        emit(measure_totp(args.number, args.repeat))
    else:
        emit(run(number=args.number, repeat=args.repeat, import_runs=3))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
