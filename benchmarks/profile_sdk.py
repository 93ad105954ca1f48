"""Profile the SDK path against the same transport used raw and against raw aiohttp (cProfile,
in subprocesses).

The clients run the same workload at one concurrency with cProfile enabled over the timed
phase only. The analysis reports, per request: the functions of ``mfa_common`` (file:line) by
own and cumulative time, and the functions whose own time grows most from the raw client to
the SDK (what the SDK adds), against the same transport used raw and against raw aiohttp (the
floor of the asyncio target). cProfile inflates every call, so read the figures as shares.
"""

from __future__ import annotations

import os
import pstats
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, run_json, uvicorn_server
from benchmarks.overhead import client_command

Key = tuple[str, int, str]


def _short(path: str) -> str:
    root = str(ROOT) + os.sep
    if path.startswith(root):
        return path[len(root) :]
    marker = "site-packages" + os.sep
    if marker in path:
        return path.split(marker, 1)[1]
    return path


def _label(key: Key) -> str:
    path, line, name = key
    if path == "~":
        return name
    return f"{_short(path)}:{line}({name})"


def _load(path: str) -> dict[Key, tuple[int, float, float]]:
    stats = pstats.Stats(path)
    table: dict[Key, tuple[int, float, float]] = {}
    for key, (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        table[key] = (nc, tt, ct)
    return table


def analyse(
    sdk_prof: str, raw_prof: str, sdk_requests: int, raw_requests: int, top: int = 20
) -> dict[str, Any]:
    """Per-request figures from two cProfile dumps."""
    sdk = _load(sdk_prof)
    raw = _load(raw_prof)
    sdk_total = sum(tt for _, tt, _ in sdk.values()) / sdk_requests * 1e6
    raw_total = sum(tt for _, tt, _ in raw.values()) / raw_requests * 1e6

    def per_req(v: tuple[int, float, float], n: int) -> dict[str, float]:
        return {
            "calls_per_req": round(v[0] / n, 2),
            "tottime_us": round(v[1] / n * 1e6, 2),
            "cumtime_us": round(v[2] / n * 1e6, 2),
        }

    core: list[dict[str, Any]] = [
        {"function": _label(k), **per_req(v, sdk_requests)}
        for k, v in sdk.items()
        if "mfa_common" in k[0] or "benchmarks/sdk_client" in k[0]
    ]
    by_own = sorted(core, key=lambda r: -float(r["tottime_us"]))[:top]
    by_cum = sorted(core, key=lambda r: -float(r["cumtime_us"]))[:top]
    deltas: list[dict[str, Any]] = []
    for k, v in sdk.items():
        own_sdk = v[1] / sdk_requests * 1e6
        own_raw = raw[k][1] / raw_requests * 1e6 if k in raw else 0.0
        calls_sdk = v[0] / sdk_requests
        calls_raw = raw[k][0] / raw_requests if k in raw else 0.0
        deltas.append(
            {
                "function": _label(k),
                "delta_tottime_us": round(own_sdk - own_raw, 2),
                "sdk_tottime_us": round(own_sdk, 2),
                "raw_tottime_us": round(own_raw, 2),
                "sdk_calls_per_req": round(calls_sdk, 2),
                "raw_calls_per_req": round(calls_raw, 2),
            }
        )
    deltas.sort(key=lambda r: -float(r["delta_tottime_us"]))
    groups: dict[str, float] = {}
    for k, v in sdk.items():
        group = _group(k[0], k[2])
        groups[group] = groups.get(group, 0.0) + v[1] / sdk_requests * 1e6
    raw_groups: dict[str, float] = {}
    for k, v in raw.items():
        group = _group(k[0], k[2])
        raw_groups[group] = raw_groups.get(group, 0.0) + v[1] / raw_requests * 1e6
    group_rows: list[dict[str, Any]] = sorted(
        (
            {"group": g, "sdk_us": round(groups.get(g, 0.0), 1), "raw_us": round(raw_groups.get(g, 0.0), 1)}
            for g in set(groups) | set(raw_groups)
        ),
        key=lambda r: -(float(r["sdk_us"]) - float(r["raw_us"])),
    )
    return {
        "profiled_us_per_req": {"sdk": round(sdk_total, 1), "raw_transport": round(raw_total, 1)},
        "mfa_common_by_own_time": by_own,
        "mfa_common_by_cumulative_time": by_cum,
        "largest_additions": deltas[:top],
        "groups": group_rows,
    }


def _group(path: str, name: str) -> str:
    """A coarse bucket for a function: which library its time belongs to."""
    if path == "~":
        if "json" in name or "loads" in name or "dumps" in name:
            return "json (C)"
        return "builtins"
    p = path.replace(os.sep, "/")
    for marker, label in (
        ("mfa_common/_transports", "mfa_common/_transports"),
        ("mfa_common", "mfa_common (excl. transports)"),
        ("benchmarks/", "benchmarks (workload)"),
        ("cattrs", "cattrs"),
        ("<cattrs", "cattrs generated"),
        ("attr/", "attrs"),
        ("httpx/_auth", "httpx auth flow"),
        ("httpx/_client", "httpx client"),
        ("httpx/_models", "httpx models"),
        ("httpx/", "httpx other"),
        ("httpcore2", "httpcore2"),
        ("anyio", "anyio"),
        ("aiohttp", "aiohttp"),
        ("yarl", "yarl"),
        ("multidict", "multidict"),
        ("asyncio", "asyncio"),
        ("trio", "trio"),
        ("json/", "json"),
        ("logging", "logging"),
        ("typing", "typing"),
    ):
        if marker in p:
            return label
    if p.startswith("<"):
        return "generated code"
    return "other stdlib"


def run(*, n: int, conc: int, methods: list[str], max_seconds: float = 60.0) -> dict[str, Any]:
    """Profile sdk, raw_transport and aiohttp for each method; return the analyses."""
    out: dict[str, Any] = {"conc": conc, "n": n, "methods": {}}
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp, uvicorn_server() as server:
        for method in methods:
            results: dict[str, dict[str, Any]] = {}
            for client in ("sdk", "raw_transport", "aiohttp"):
                prof = str(Path(tmp) / f"{client}-{method}.prof")
                cmd = client_command(client, method, conc, n, server.base_url, max_seconds, "--profile", prof)
                results[client] = run_json(cmd, timeout=max_seconds + 120) | {"prof": prof}
            if any("error" in r for r in results.values()):
                out["methods"][method] = {"error": "; ".join(r.get("error", "") for r in results.values())}
                continue
            out["methods"][method] = analyse(
                results["sdk"]["prof"],
                results["raw_transport"]["prof"],
                int(results["sdk"]["requests"]),
                int(results["raw_transport"]["requests"]),
            ) | {
                "profiled_cpu_us_per_req": {client: r["cpu_us_per_req"] for client, r in results.items()},
                "vs_aiohttp": analyse(
                    results["sdk"]["prof"],
                    results["aiohttp"]["prof"],
                    int(results["sdk"]["requests"]),
                    int(results["aiohttp"]["requests"]),
                ),
            }
    return out
