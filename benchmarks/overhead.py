"""Overhead benchmark driver: every client, method and concurrency against one uvicorn server.

The server runs ``benchmarks.server_app`` with ``--http httptools`` and one worker, pinned to
CPU 0; each client run is a separate process pinned to CPU 1 (``overhead_client``).

A cell (client, method, concurrency) is the median of its repetitions. Repetitions are
interleaved: each round runs every client of a (method, concurrency) back to back, in an order
rotated from round to round, so a slow spell of the machine lands on every client rather than
on one. Each cell also keeps its spread (the slowest repetition's client CPU per request over
the fastest; from five repetitions on, the second slowest over the second fastest): a ratio
between two cells means something only when both spreads are small.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks._common import PYTHON, median, run_json, uvicorn_server

GET_CLIENTS = ["sdk", "raw_transport", "httpx", "aiohttp", "httpx2", "sdk_trio", "raw_transport_trio"]
POST_CLIENTS = ["sdk", "raw_transport", "httpx", "aiohttp", "sdk_trio", "raw_transport_trio"]
OPTIONAL = {"httpx2": "httpx2", "httpx2_aiohttp": "httpx2"}
METRICS = ("rps", "cpu_us_per_req", "p50_ms", "p99_ms", "server_cpu_us_per_req", "client_cpu_util")
# The share of the requests per run that a client makes: httpx's own pool costs ~10x aiohttp
# per request, so it makes fewer and still spends more CPU per run than the others.
REQUEST_SHARE = {"httpx": 0.25, "httpx2": 0.25, "httpx2_aiohttp": 0.5}
# The clients whose cells carry the targets against raw aiohttp and the raw transports: their
# repetitions must agree within this factor for a ratio between them to tell a change from noise.
SPREAD_LIMIT = 1.30
SPREAD_CLIENTS = ("sdk", "aiohttp", "sdk_trio", "raw_transport_trio")


def _available(client: str) -> bool:
    module = OPTIONAL.get(client)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def requests_for(client: str, n: int) -> int:
    """The number of timed requests of one run of ``client``, for ``n`` per run (at every
    concurrency: a run at concurrency 1 spends less CPU, and needs as many requests to settle)."""
    return max(50, round(n * REQUEST_SHARE.get(client, 1.0)))


def run(
    *,
    n: int,
    reps: int,
    concs: list[int],
    methods: list[str],
    clients: list[str] | None = None,
    max_seconds: float = 30.0,
    warmup: int = 200,
    warmup_rounds: int = 0,
) -> dict[str, Any]:
    """Run the matrix; return raw runs, per-cell medians and spreads, and notes."""
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
        # Rounds below 0 warm the server (and the machine) up and are not kept: in two full
        # runs the first one or two rounds of several cells came out up to 1.7x dearer than
        # the later ones.
        for rep in range(-warmup_rounds, reps):
            for conc in concs:
                for method in methods:
                    order = plan[method]
                    shift = rep % len(order) if order else 0
                    for client in order[shift:] + order[:shift]:
                        count = requests_for(client, n)
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
                        _progress(result)
                        if rep >= 0:
                            runs.append(result)
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


# From this many repetitions on, a cell's spread leaves out its slowest and its fastest one:
# the cell is their median, which one outlier does not move, so one preempted round must not
# mark it noisy either; with fewer, every repetition counts.
TRIM_FROM = 5


def spread(values: list[float]) -> float | None:
    """The slowest repetition over the fastest (1.0 for one), or None for none; from
    :data:`TRIM_FROM` repetitions on, the second slowest over the second fastest."""
    if not values or min(values) <= 0:
        return None
    ordered = sorted(values)
    if len(ordered) >= TRIM_FROM:
        ordered = ordered[1:-1]
    return ordered[-1] / ordered[0]


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median of each metric per (client, method, conc) over the successful repetitions, and
    the spread of the client CPU per request."""
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
            "requests": median([float(r["requests"]) for r in ok]),
            "errors": [r["error"] for r in rs if "error" in r],
            "request_errors": sum(int(r.get("errors", 0)) for r in ok),
        }
        for m in METRICS:
            values = [float(r[m]) for r in ok if r.get(m) is not None]
            cell[m] = median(values)
            cell[m + "_all"] = values
        cell["cpu_spread"] = spread(cell["cpu_us_per_req_all"])
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


def _paired(result: dict[str, Any], a: str, b: str, method: str, conc: int) -> list[float]:
    """The CPU ratio of ``a`` to ``b`` in each round where both ran (they ran back to back)."""
    per_rep: dict[int, dict[str, float]] = {}
    for r in result.get("runs", []):
        if r["method"] == method and r["conc"] == conc and r["client"] in (a, b) and r.get("cpu_us_per_req"):
            per_rep.setdefault(r["rep"], {})[r["client"]] = float(r["cpu_us_per_req"])
    return [v[a] / v[b] for _, v in sorted(per_rep.items()) if a in v and b in v]


def _noise(result: dict[str, Any], a: str, b: str, method: str, conc: int) -> tuple[str, bool]:
    """What a ratio between two cells is worth: each cell's spread, the range of the ratio
    round by round, and whether either cell is noisier than :data:`SPREAD_LIMIT`."""
    ca, cb = cell(result, a, method, conc), cell(result, b, method, conc)
    spreads = [c["cpu_spread"] for c in (ca, cb) if c is not None and c.get("cpu_spread")]
    reps = min((c["reps"] for c in (ca, cb) if c is not None), default=0)
    if reps < 2 or len(spreads) < 2:
        return "", False
    paired = _paired(result, a, b, method, conc)
    text = f"; spreads {spreads[0]:.2f}x/{spreads[1]:.2f}x"
    if len(paired) >= 2:
        text += f", rounds {min(paired):.2f}-{max(paired):.2f}x"
    noisy = max(spreads) > SPREAD_LIMIT
    return text + (" NOISY" if noisy else ""), noisy


def _target(
    result: dict[str, Any], name: str, a: str, b: str, method: str, conc: int, what: str, limit: float | None
) -> dict[str, Any] | None:
    """A CPU-per-request ratio line between cells ``a`` and ``b`` (informational without a limit)."""
    ratio = _ratio(cell(result, a, method, conc), cell(result, b, method, conc), "cpu_us_per_req")
    if ratio is None:
        return None
    noise, noisy = _noise(result, a, b, method, conc)
    bound = f" (<= {limit:.2f}" if limit is not None else " (informational"
    digits = 3 if "httpx" in what else 2
    return {
        "name": name,
        "figure": f"{ratio:.{digits}f}x {what} CPU/request{bound}{noise})",
        "value": ratio,
        "passed": None if limit is None else ratio <= limit,
        "noisy": noisy,
        "timing": True,
    }


# The asyncio default (aiohttp underneath) against raw aiohttp at the concurrencies of batch work.
AIOHTTP_LIMIT = 1.50


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The overhead targets (PASS/FAIL), the informational ratios, and the spread check."""
    out: list[dict[str, Any]] = []
    concs = sorted({c["conc"] for c in result.get("cells", [])})
    methods = [m for m in ("get", "post") if any(c["method"] == m for c in result.get("cells", []))]

    def add(line: dict[str, Any] | None) -> None:
        if line is not None:
            out.append(line)

    for method in methods:
        for conc in concs:
            for sdk, raw, label in (
                ("sdk", "raw_transport", "asyncio/aiohttp"),
                ("sdk_trio", "raw_transport_trio", "trio/httpcore2"),
            ):
                # On Trio the same transport used raw (httpcore2) is the floor: at the
                # concurrencies of real work the SDK may cost no more than it.
                limit = 1.0 if sdk == "sdk_trio" and conc >= 16 else 1.10
                loop = label.split("/")[0]
                add(
                    _target(
                        result,
                        f"sdk_overhead_{loop}_{method}_c{conc}",
                        sdk,
                        raw,
                        method,
                        conc,
                        f"raw same-transport ({label})",
                        limit,
                    )
                )
        for conc in concs:
            if conc < 16:
                continue
            for sdk in ("sdk", "sdk_trio"):
                loop = "asyncio" if sdk == "sdk" else "trio"
                # Trio's floor is httpcore2 (aiohttp cannot run there): its target is the
                # same-transport one above; against httpx it is informational.
                limit = None if sdk == "sdk_trio" else 0.25
                add(
                    _target(
                        result,
                        f"sdk_{loop}_vs_httpx_cpu_{method}_c{conc}",
                        sdk,
                        "httpx",
                        method,
                        conc,
                        "raw httpx 0.28.1",
                        limit,
                    )
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
                            "timing": True,
                        }
                    )
        for conc in concs:
            for sdk in ("sdk", "sdk_trio"):
                loop = "asyncio" if sdk == "sdk" else "trio"
                # The asyncio default at the concurrencies of batch work has a target; elsewhere
                # (and on Trio, where aiohttp cannot run) raw aiohttp is the floor, for reading.
                target = loop == "asyncio" and conc >= 16
                add(
                    _target(
                        result,
                        f"sdk_{loop}_vs_aiohttp_cpu_{method}_c{conc}",
                        sdk,
                        "aiohttp",
                        method,
                        conc,
                        "raw aiohttp" if target else "raw aiohttp (the floor)",
                        AIOHTTP_LIMIT if target else None,
                    )
                )
    add(spread_target(result))
    add(errors_target(result))
    return out


def errors_target(result: dict[str, Any]) -> dict[str, Any] | None:
    """Every run finished and every request was answered (not a timing: enforced always)."""
    runs = result.get("runs", [])
    if not runs:
        return None
    failed = [r for r in runs if "error" in r]
    requests = sum(int(r.get("errors", 0)) for r in runs if "error" not in r)
    figure = f"{len(failed)} failed runs, {requests} failed requests over {len(runs)} runs (want 0, 0)"
    if failed:
        figure += "; first: " + str(failed[0]["error"])[:200]
    return {
        "name": "overhead_errors",
        "figure": figure,
        "value": len(failed) + requests,
        "passed": not (failed or requests),
    }


def spread_target(result: dict[str, Any]) -> dict[str, Any] | None:
    """Whether every cell of :data:`SPREAD_CLIENTS` agrees with itself within
    :data:`SPREAD_LIMIT` (a target once there are three repetitions to compare)."""
    measured = [c for c in result.get("cells", []) if c["client"] in SPREAD_CLIENTS and c.get("cpu_spread")]
    if not measured:
        return None
    worst = max(measured, key=lambda c: float(c["cpu_spread"]))
    noisy = [c for c in measured if float(c["cpu_spread"]) > SPREAD_LIMIT]
    reps = min(int(c["reps"]) for c in measured)
    names = ", ".join(
        f"{c['client']} {c['method'].upper()} c{c['conc']} {c['cpu_spread']:.2f}x" for c in noisy
    )
    figure = (
        f"worst {worst['cpu_spread']:.2f}x ({worst['client']} {worst['method'].upper()} c{worst['conc']}) "
        f"over {len(measured)} cells of {', '.join(SPREAD_CLIENTS)}, {reps}+ repetitions each "
        f"(<= {SPREAD_LIMIT:.2f})" + (f"; noisy: {names}" if noisy else "")
    )
    return {
        "name": "overhead_spread",
        "figure": figure,
        "value": worst["cpu_spread"],
        "passed": (not noisy) if reps >= 3 else None,
        "timing": True,
    }
