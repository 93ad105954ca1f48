"""Overhead benchmark driver: every client, method and concurrency against one uvicorn server.

The server runs ``benchmarks.server_app`` with ``--http httptools`` and one worker, pinned to
CPU 0; each client run is a separate process pinned to CPU 1 (``overhead_client``). Runs are
interleaved (repetition outermost) and each cell is the median over repetitions.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks._common import PYTHON, median, run_json, uvicorn_server

GET_CLIENTS = ["sdk", "raw_transport", "httpx", "aiohttp", "httpx2", "sdk_trio", "raw_transport_trio"]
POST_CLIENTS = ["sdk", "raw_transport", "httpx", "aiohttp", "sdk_trio", "raw_transport_trio"]
OPTIONAL = {"httpx2": "httpx2", "httpx2_aiohttp": "httpx2"}
METRICS = ("rps", "cpu_us_per_req", "p50_ms", "p99_ms", "server_cpu_us_per_req", "client_cpu_util")


def _available(client: str) -> bool:
    module = OPTIONAL.get(client)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run(
    *,
    n: int,
    reps: int,
    concs: list[int],
    methods: list[str],
    clients: list[str] | None = None,
    max_seconds: float = 30.0,
    warmup: int = 200,
) -> dict[str, Any]:
    """Run the matrix; return raw runs, per-cell medians and notes."""
    notes: list[str] = []
    plan: dict[str, list[str]] = {}
    for method in methods:
        wanted = clients or (GET_CLIENTS if method == "get" else POST_CLIENTS)
        present = []
        for client in wanted:
            if _available(client):
                present.append(client)
            else:
                notes.append(f"{client}: SKIPPED ({OPTIONAL[client]} not installed)")
        plan[method] = present
    runs: list[dict[str, Any]] = []
    with uvicorn_server() as server:
        for rep in range(reps):
            for conc in concs:
                for method in methods:
                    for client in plan[method]:
                        count = max(50, n // 2) if conc == 1 else n
                        cmd = client_command(
                            client,
                            method,
                            conc,
                            count,
                            server.base_url,
                            max_seconds,
                            "--warmup",
                            str(min(warmup, count)),
                            "--server-pid",
                            str(server.pid),
                        )
                        result = run_json(cmd, timeout=max_seconds + 120)
                        result.update({"client": client, "method": method, "conc": conc, "rep": rep})
                        runs.append(result)
                        _progress(result)
    return {"runs": runs, "cells": aggregate(runs), "notes": notes}


def client_command(
    client: str, method: str, conc: int, n: int, url: str, max_seconds: float, *extra: str
) -> list[str]:
    """The command line of one ``benchmarks.overhead_client`` run (also used by the profile)."""
    return [
        PYTHON,
        "-m",
        "benchmarks.overhead_client",
        "--client",
        client,
        "--method",
        method,
        "--conc",
        str(conc),
        "--n",
        str(n),
        "--url",
        url,
        "--max-seconds",
        str(max_seconds),
        *extra,
    ]


def _progress(result: dict[str, Any]) -> None:
    if "error" in result:
        text = f"ERROR {result['error']}"
    else:
        text = f"{result['rps']:>8} req/s {result['cpu_us_per_req']:>8} us/req p99 {result['p99_ms']:>8} ms"
    sys.stderr.write(
        f"  overhead rep{result['rep']} {result['client']:<18} {result['method']:<4} "
        f"c{result['conc']:<3} {text}\n"
    )
    sys.stderr.flush()


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median of each metric per (client, method, conc) over the successful repetitions."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["client"], r["method"], r["conc"]), []).append(r)
    cells = []
    for (client, method, conc), rs in groups.items():
        ok = [r for r in rs if "error" not in r]
        cell: dict[str, Any] = {
            "client": client,
            "method": method,
            "conc": conc,
            "reps": len(ok),
            "errors": [r["error"] for r in rs if "error" in r],
            "request_errors": sum(int(r.get("errors", 0)) for r in ok),
        }
        for m in METRICS:
            values = [float(r[m]) for r in ok if r.get(m) is not None]
            cell[m] = median(values)
            cell[m + "_all"] = values
        cells.append(cell)
    return cells


def cell(result: dict[str, Any], client: str, method: str, conc: int) -> dict[str, Any] | None:
    """One aggregated cell, or None when it was not measured (or every repetition failed)."""
    for c in result.get("cells", []):
        if c["client"] == client and c["method"] == method and c["conc"] == conc and c["reps"]:
            found: dict[str, Any] = c
            return found
    return None


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, metric: str) -> float | None:
    if a is None or b is None or not a.get(metric) or not b.get(metric):
        return None
    return float(a[metric]) / float(b[metric])


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The overhead targets (PASS/FAIL) and informational ratios."""
    out: list[dict[str, Any]] = []
    concs = sorted({c["conc"] for c in result.get("cells", [])})
    methods = [m for m in ("get", "post") if any(c["method"] == m for c in result.get("cells", []))]
    for method in methods:
        for conc in concs:
            for sdk, raw, label in (
                ("sdk", "raw_transport", "asyncio/aiohttp"),
                ("sdk_trio", "raw_transport_trio", "trio/httpcore2"),
            ):
                ratio = _ratio(
                    cell(result, sdk, method, conc), cell(result, raw, method, conc), "cpu_us_per_req"
                )
                if ratio is not None:
                    # On Trio the same transport used raw (httpcore2) is the floor: at the
                    # concurrencies of real work the SDK may cost no more than it.
                    limit = 1.0 if sdk == "sdk_trio" and conc >= 16 else 1.10
                    out.append(
                        {
                            "name": f"sdk_overhead_{label.split('/')[0]}_{method}_c{conc}",
                            "figure": f"{ratio:.2f}x raw same-transport ({label}) CPU/request"
                            f" (<= {limit:.2f})",
                            "value": ratio,
                            "passed": ratio <= limit,
                        }
                    )
        for conc in concs:
            if conc < 16:
                continue
            for sdk in ("sdk", "sdk_trio"):
                loop = "asyncio" if sdk == "sdk" else "trio"
                ratio = _ratio(
                    cell(result, sdk, method, conc), cell(result, "httpx", method, conc), "cpu_us_per_req"
                )
                if ratio is not None:
                    # Trio's floor is httpcore2 (aiohttp cannot run there): its target is the
                    # same-transport one above; against httpx it is informational.
                    trio = sdk == "sdk_trio"
                    out.append(
                        {
                            "name": f"sdk_{loop}_vs_httpx_cpu_{method}_c{conc}",
                            "figure": f"{ratio:.3f}x raw httpx 0.28.1 CPU/request"
                            + (" (informational)" if trio else " (<= 0.25)"),
                            "value": ratio,
                            "passed": None if trio else ratio <= 0.25,
                        }
                    )
        top = max(concs) if concs else None
        if top is not None and top >= 64:
            for sdk in ("sdk", "sdk_trio"):
                loop = "asyncio" if sdk == "sdk" else "trio"
                ratio = _ratio(cell(result, sdk, method, top), cell(result, "httpx", method, top), "p99_ms")
                if ratio is not None:
                    out.append(
                        {
                            "name": f"sdk_{loop}_vs_httpx_p99_{method}_c{top}",
                            "figure": f"{ratio:.3f}x raw httpx 0.28.1 p99 (<= 0.20)",
                            "value": ratio,
                            "passed": ratio <= 0.20,
                        }
                    )
        for conc in concs:
            for sdk in ("sdk", "sdk_trio"):
                ratio = _ratio(
                    cell(result, sdk, method, conc), cell(result, "aiohttp", method, conc), "cpu_us_per_req"
                )
                if ratio is not None:
                    loop = "asyncio" if sdk == "sdk" else "trio"
                    # The asyncio default (aiohttp underneath) at the concurrencies of batch
                    # work: at most twice raw aiohttp. Elsewhere the figure is informational.
                    target = loop == "asyncio" and conc >= 16
                    out.append(
                        {
                            "name": f"sdk_{loop}_vs_aiohttp_cpu_{method}_c{conc}",
                            "figure": f"{ratio:.2f}x raw aiohttp CPU/request"
                            + (" (<= 2.00)" if target else " (the floor; informational)"),
                            "value": ratio,
                            "passed": ratio <= 2.0 if target else None,
                        }
                    )
    return out
