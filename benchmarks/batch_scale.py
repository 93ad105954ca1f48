"""Batch scale: ``mfa_common.batch.run_batch`` over real loopback sockets.

* Wall time: N authenticated POSTs through the SDK at concurrency 50 against the benchmark
  server with 50 ms latency added by the shipped fake controls; the ideal is
  N × latency / concurrency (10.0 s for 10,000); target ≤ 1.15 × ideal.
* Memory: peak RSS (``getrusage`` max RSS) of a fresh batch process for each size with zero
  latency; target: the spread across sizes ≤ 20 MB.

Each run is its own process pinned to CPU 1; the server (uvicorn, one worker) is pinned to CPU 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import time
from typing import Any

from benchmarks._common import PYTHON, emit, run_json, uvicorn_server

CONCURRENCY = 50
LATENCY = 0.05


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float | None:
    with contextlib.suppress(Exception):
        import psutil  # type: ignore[import-untyped]

        return float(psutil.Process().memory_info().rss) / 2**20
    return None


async def _child(url: str, n: int, concurrency: int) -> dict[str, Any]:
    import anyio

    from benchmarks.sdk_client import NEW_ITEM, BenchClient
    from benchmarks.server_app import TOKEN
    from mfa_common.batch import run_batch

    async with BenchClient(url, TOKEN) as client:
        await client.get_profile()  # warm: transport built, first connection open
        rss_before = _current_rss_mb()
        peak_before = _rss_mb()

        async def operation(_i: int) -> None:
            await client.create_item(NEW_ITEM)

        started, cpu0 = time.perf_counter(), time.process_time()
        with anyio.fail_after(600):
            summary = await run_batch(range(n), operation, concurrency=concurrency)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    return {
        "n": n,
        "concurrency": concurrency,
        "wall_s": round(wall, 3),
        "client_cpu_util": round(cpu / wall, 3) if wall > 0 else None,
        "client_cpu_us_per_op": round(cpu / n * 1e6, 1) if n else None,
        "done": summary.done,
        "failed": summary.failed,
        "unknown": summary.unknown,
        "skipped": summary.skipped,
        "peak_rss_mb": round(_rss_mb(), 1),
        "peak_rss_before_batch_mb": round(peak_before, 1),
        "rss_before_batch_mb": round(rss_before, 1) if rss_before is not None else None,
        "rss_after_batch_mb": round(v, 1) if (v := _current_rss_mb()) is not None else None,
    }


def _server_cpu(pid: int) -> float | None:
    with contextlib.suppress(Exception):
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    return None


def _missing() -> str | None:
    try:
        import mfa_common.batch  # noqa: F401
        import mfa_common.testing  # noqa: F401
    except ImportError as exc:
        return f"SKIPPED: {exc.name or exc} not available"
    return None


def run(*, wall_n: int, rss_sizes: list[int], latency: float = LATENCY) -> dict[str, Any]:
    """The wall-time run (with latency) and one RSS run per size (without)."""
    missing = _missing()
    if missing:
        return {"skipped": missing}
    out: dict[str, Any] = {"concurrency": CONCURRENCY, "latency_s": latency}
    os.environ["BENCH_LATENCY"] = str(latency)
    try:
        with uvicorn_server("benchmarks.latency_app:app") as server:
            ideal = wall_n * latency / CONCURRENCY
            srv0 = _server_cpu(server.pid)
            res = run_json(_cmd(server.base_url, wall_n), timeout=ideal * 3 + 120)
            srv1 = _server_cpu(server.pid)
            res["ideal_s"] = ideal
            if srv0 is not None and srv1 is not None and res.get("wall_s"):
                res["server_cpu_util"] = round((srv1 - srv0) / res["wall_s"], 3)
            out["wall"] = res
    finally:
        os.environ.pop("BENCH_LATENCY", None)
    rss: list[dict[str, Any]] = []
    with uvicorn_server("benchmarks.latency_app:app") as server:
        for n in rss_sizes:
            res = run_json(_cmd(server.base_url, n), timeout=max(120.0, n / 400))
            res.setdefault("n", n)
            rss.append(res)
    out["rss"] = rss
    return out


def _cmd(url: str, n: int) -> list[str]:
    return [PYTHON, "-m", "benchmarks.batch_scale", "--child", "--url", url, "--n", str(n)]


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Wall time against the ideal; RSS spread across sizes."""
    if "skipped" in result:
        return [{"name": "batch_scale", "figure": result["skipped"], "value": None, "passed": None}]
    out: list[dict[str, Any]] = []
    wall = result.get("wall", {})
    if "wall_s" in wall:
        ratio = wall["wall_s"] / wall["ideal_s"]
        complete = wall["done"] == wall["n"]
        out.append(
            {
                "name": f"batch_wall_{wall['n']}_ops",
                "figure": (
                    f"{wall['wall_s']:.2f} s = {ratio:.3f}x ideal {wall['ideal_s']:.1f} s (<= 1.15), "
                    f"{wall['done']}/{wall['n']} done"
                ),
                "value": ratio,
                "passed": ratio <= 1.15 and complete,
                "timing": True,
            }
        )
    else:
        out.append(
            {
                "name": "batch_wall",
                "figure": "ERROR " + str(wall.get("error")),
                "value": None,
                "passed": False,
            }
        )
    ok = [r for r in result.get("rss", []) if "peak_rss_mb" in r]
    if len(ok) >= 2:
        peaks = [r["peak_rss_mb"] for r in ok]
        spread = max(peaks) - min(peaks)
        sizes = "/".join(f"{r['n']:,}" for r in ok)
        out.append(
            {
                "name": "batch_rss_flat",
                "figure": f"peak RSS {' / '.join(f'{p:.1f}' for p in peaks)} MB for {sizes} items: "
                f"spread {spread:.1f} MB (<= 20)",
                "value": spread,
                "passed": spread <= 20.0 and all(r["done"] == r["n"] for r in ok),
            }
        )
    errors = [r for r in result.get("rss", []) if "error" in r]
    for r in errors:
        out.append(
            {"name": f"batch_rss_{r['n']}", "figure": "ERROR " + r["error"], "value": None, "passed": False}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args()
    import anyio

    emit(anyio.run(_child, args.url, args.n, args.concurrency))


if __name__ == "__main__":
    main()
