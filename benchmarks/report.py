"""Machine facts and ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from benchmarks._common import can_pin
from benchmarks.overhead import SPREAD_LIMIT, TRIM_FROM

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
# A one-minute load average from which the machine counts as shared with other work (2 CPUs).
LOADED = 0.5
# Raw httpx 0.28.1's client CPU per GET at c16 on the reference baselines' machine (µs).
REFERENCE_HTTPX_C16_US = 1100
PACKAGES = (
    "httpx",
    "httpcore",
    "httpx2",
    "httpcore2",
    "aiohttp",
    "httpx-aiohttp",
    "anyio",
    "trio",
    "uvicorn",
    "httptools",
    "starlette",
    "attrs",
    "cattrs",
    "pyotp",
    "psutil",
)


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory, Python and package versions, pinning."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError):
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "pinned": can_pin(),
        "loadavg_at_start": [round(x, 2) for x in load] if load else None,
        "packages": versions,
    }


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _load_note(results: dict[str, Any]) -> list[str]:
    """A warning when other work shared the machine: ratios within the run stay comparable
    (each round interleaves its clients), absolute figures and spreads do not."""
    load = (results.get("machine") or {}).get("loadavg_at_start") or [0.0]
    if not load or float(load[0]) < LOADED:
        return []
    return [
        f"The one-minute load average was {float(load[0]):.2f} at the start (other work shared the "
        "machine then, or just before): compare the ratios within this run, not absolute figures "
        "across runs, and read the spreads as the machine's as much as the benchmark's.",
        "",
    ]


def write_results_md(results: dict[str, Any], path: Path = RESULTS_MD) -> Path:
    """(Re)write RESULTS.md from one run's results dict (as saved in the JSON file)."""
    m = results["machine"]
    lines: list[str] = [
        "# Benchmark results",
        "",
        f"Date: {results['date']}  ",
        f"Command: `{results['command']}`  ",
        f"Mode: {'quick (smoke sizes)' if results['quick'] else 'full'}; wall time of the run: "
        f"{results.get('elapsed_s', 0):.0f} s",
        "",
        *_load_note(results),
        "## Machine",
        "",
        "| fact | value |",
        "|---|---|",
        f"| nproc | {m['nproc']} |",
        f"| CPU | {m['cpu_model']} |",
        f"| memory | {m['memory']} |",
        f"| Python | {m['python']} ({m['platform']}) |",
        f"| pinning | {'server on CPU 0, clients on CPU 1 (taskset)' if m['pinned'] else 'none'} |",
        f"| load average at start | {m['loadavg_at_start']} |",
        "",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        "",
        "## Targets",
        "",
        "```",
        *results["target_lines"],
        "```",
        "",
    ]
    ov = results.get("sections", {}).get("overhead")
    if ov and "cells" in ov:
        cfg = ov.get("config", {})
        lines += [
            "## 1. Overhead and alternatives (loopback, uvicorn --http httptools, 1 worker)",
            "",
            f"Requests per run: {cfg.get('n')} (httpx a quarter: `overhead.REQUEST_SHARE`), "
            f"after {cfg.get('warmup')} untimed; {cfg.get('warmup_rounds', 0)} untimed round(s) on "
            f"the fresh server, then {cfg.get('reps')} rounds. Each round runs the clients of one "
            "method and concurrency back to back, in an order rotated from round to round; a cell "
            "is the median of its rounds, and its spread "
            "is the slowest round's client CPU per request over the fastest, leaving out the "
            f"extreme two from {TRIM_FROM} rounds on (the target lines "
            f"call a ratio NOISY when either cell's spread exceeds {SPREAD_LIMIT:.2f}x). Client CPU "
            "µs/request = process CPU time over requests. `sdk` = BaseClient subclass + "
            "BearerTokenAuth + cattrs model (default transport: aiohttp on asyncio, httpcore2 on "
            "Trio); `raw_transport` = `httpx.AsyncClient(transport=AiohttpTransport(...))` with "
            "headers by hand and `response.json()`; `httpx` = httpx 0.28.1 `AsyncClient()` "
            "defaults; `aiohttp` = raw `ClientSession` (the floor); `*_trio` = the same on Trio "
            "over the httpcore2 transport.",
            "",
            "| client | method | conc | requests/run | req/s | client CPU µs/req | spread | CPU µs/req "
            "per round | p50 ms | p99 ms | server CPU µs/req | client CPU util | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        order = {c: i for i, c in enumerate(ov.get("client_order", []))}
        for c in sorted(ov["cells"], key=lambda c: (c["method"], c["conc"], order.get(c["client"], 99))):
            errs = c["request_errors"] + len(c["errors"])
            spread = c.get("cpu_spread")
            shown = (
                "–" if spread is None else f"{spread:.2f}x" + (" (noisy)" if spread > SPREAD_LIMIT else "")
            )
            rounds = " / ".join(f"{v:.0f}" for v in c.get("cpu_us_per_req_all", []))
            lines.append(
                f"| {c['client']} | {c['method'].upper()} | {c['conc']} | {_fmt(c.get('requests'), 0)} | "
                f"{_fmt(c['rps'], 0)} | {_fmt(c['cpu_us_per_req'])} | {shown} | {rounds} | "
                f"{_fmt(c['p50_ms'], 2)} | {_fmt(c['p99_ms'], 2)} | "
                f"{_fmt(c['server_cpu_us_per_req'])} | {_fmt(c['client_cpu_util'], 2)} | {errs} |"
            )
        for note in ov.get("notes", []):
            lines.append(f"\nNote: {note}")
        if ov.get("chart"):
            lines += ["", f"![throughput against concurrency]({ov['chart']})"]
        lines.append("")
    prof = results.get("sections", {}).get("profile")
    if prof and "methods" in prof:
        lines += [
            "## Profile of the SDK path (cProfile, same workload, SDK vs raw same transport and raw aiohttp)",
            "",
            f"Concurrency {prof['conc']}, {prof['n']} requests per client. cProfile inflates every "
            "call; read the figures as shares.",
            "",
        ]
        for method, a in prof["methods"].items():
            if "error" in a:
                lines.append(f"{method.upper()}: ERROR {a['error']}")
                continue
            lines += [
                f"### {method.upper()}: profiled own time per request: SDK "
                f"{a['profiled_us_per_req']['sdk']} µs, raw {a['profiled_us_per_req']['raw_transport']} µs",
                "",
                "| library | SDK µs/req | raw µs/req |",
                "|---|---|---|",
                *[f"| {g['group']} | {g['sdk_us']} | {g['raw_us']} |" for g in a["groups"][:12]],
                "",
                "Largest additions (own time, SDK minus raw, µs/request):",
                "",
                "| function | added µs | SDK calls/req | raw calls/req |",
                "|---|---|---|---|",
                *[
                    f"| `{d['function']}` | {d['delta_tottime_us']} | {d['sdk_calls_per_req']} | "
                    f"{d['raw_calls_per_req']} |"
                    for d in a["largest_additions"][:15]
                ],
                "",
                *_floor_rows(a.get("vs_aiohttp")),
                "mfa_common functions by cumulative time (µs/request; coroutine resumptions count as calls):",
                "",
                "| function | own µs | cumulative µs | calls/req |",
                "|---|---|---|---|",
                *[
                    f"| `{d['function']}` | {d['tottime_us']} | {d['cumtime_us']} | {d['calls_per_req']} |"
                    for d in a["mfa_common_by_cumulative_time"][:15]
                ],
                "",
            ]
    storm = results.get("sections", {}).get("login_storm")
    if storm:
        lines += ["## 3. Login storm", ""]
        if "skipped" in storm:
            lines.append(storm["skipped"])
        else:
            lines += [
                "| backend | calls | ok | logins | MFA steps | storm wall s | one plain call ms | note |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for b in storm.get("backends", []):
                lines.append(
                    f"| {b['backend']} | {_fmt(b.get('calls'))} | {_fmt(b.get('ok'))} | "
                    f"{_fmt(b.get('logins'))} | "
                    f"{_fmt(b.get('mfa_steps'))} | {_fmt(b.get('storm_wall_s'), 3)} | "
                    f"{_fmt(b.get('plain_call_ms'), 2)} | {b.get('skipped') or b.get('error') or ''} |"
                )
        lines.append("")
    batch = results.get("sections", {}).get("batch_scale")
    if batch:
        lines += ["## 4. Batch scale", ""]
        if "skipped" in batch:
            lines.append(batch["skipped"])
        else:
            w = batch.get("wall", {})
            lines += [
                f"Wall: {w.get('n')} POSTs, concurrency {batch['concurrency']}, latency "
                f"{batch['latency_s'] * 1000:.0f} ms: {_fmt(w.get('wall_s'), 2)} s against ideal "
                f"{_fmt(w.get('ideal_s'), 1)} s; done {w.get('done')}, failed {w.get('failed')}; client "
                f"CPU util {w.get('client_cpu_util')}, {w.get('client_cpu_us_per_op')} µs/op; "
                "server CPU util "
                f"{w.get('server_cpu_util')}.",
                "",
                "| items (zero latency) | wall s | done | peak RSS MB | peak RSS before the batch MB |",
                "|---|---|---|---|---|",
            ]
            for r in batch.get("rss", []):
                lines.append(
                    f"| {r.get('n'):,} | {_fmt(r.get('wall_s'), 2)} | {_fmt(r.get('done'))} | "
                    f"{_fmt(r.get('peak_rss_mb'))} | {_fmt(r.get('peak_rss_before_batch_mb'))} |"
                    if "error" not in r
                    else f"| {r.get('n')} | ERROR {r['error']} | | | |"
                )
        lines.append("")
    code = results.get("sections", {}).get("code_cost")
    if code:
        lines += ["## 5. Cost of a code and of an import", ""]
        t = code.get("totp", {})
        if "mfa_common_code_at" in t:
            lines += [
                f"timeit, {t['number']} calls × {t['repeat']} repeats, median (min) µs per code:",
                "",
                "| variant | µs/code |",
                "|---|---|",
                f"| `mfa_common.totp.Totp.code_at` (object reused) | {t['mfa_common_code_at']['median_us']} "
                f"({t['mfa_common_code_at']['min_us']}) |",
                "| `pyotp.TOTP(secret).now()` (new object per call) | "
                f"{t['pyotp_new_object_now']['median_us']} "
                f"({t['pyotp_new_object_now']['min_us']}) |",
                f"| `totp.now()` (pyotp, object reused) | {t['pyotp_reused_now']['median_us']} "
                f"({t['pyotp_reused_now']['min_us']}) |",
                "",
            ]
        elif "error" in t:
            lines.append(f"TOTP: ERROR {t['error']}\n")
        lines += [
            '`python -X importtime -c "STATEMENT"`, the top-level cumulative time of what the '
            f"statement imports, median of {code.get('import_runs')} "
            "fresh processes after a warm-up run (bytecode cached; runs interleaved across rows):",
            "",
            "| import | cumulative ms | runs (ms) | modules imported |",
            "|---|---|---|---|",
        ]
        for mod, e in code.get("imports", {}).items():
            shown = f"`{e.get('statement', 'import ' + mod)}`"
            if "median_us" in e:
                runs = " / ".join(f"{v / 1000:.1f}" for v in e["runs_us"])
                lines.append(f"| {shown} | {e['median_us'] / 1000:.1f} | {runs} | {e['modules']} |")
            else:
                lines.append(f"| {shown} | ERROR {e.get('error')} | | |")
        lines.append("")
        startup = code.get("startup")
        if startup:
            lines += [
                "Start-up of the command-line tools: wall time of a whole process, median of "
                f"{code.get('startup_runs')} fresh processes pinned to one CPU after a warm-up run "
                "(bytecode cached; runs interleaved across rows), against a bare typer application "
                "with three commands (`benchmarks/bare_typer_app.py`) in the same run:",
                "",
                "| command | median ms | x bare typer app --help | runs (ms) |",
                "|---|---|---|---|",
            ]
            reference = startup.get("bare typer app --help", {}).get("median_ms")
            for label, e in startup.items():
                if "median_ms" in e:
                    ratio = f"{e['median_ms'] / reference:.2f}" if reference else "?"
                    runs = " / ".join(f"{v:.0f}" for v in e["runs_ms"])
                    lines.append(f"| `{label}` | {e['median_ms']:.0f} | {ratio} | {runs} |")
                else:
                    lines.append(f"| `{label}` | ERROR {e.get('error')} | | |")
            lines.append("")
    skipped = results.get("skipped", [])
    if skipped:
        lines += ["## Skipped", "", *[f"- {s}" for s in skipped], ""]
    lines += [
        "## Caveats",
        "",
        "- A 2-CPU VM shared with other work: client CPU per request is the most stable figure; "
        "req/s and p99 move more between runs. Read differences below ~15% as noise.",
        "- Loopback, HTTP/1.1 without TLS, small bodies, the default asyncio loop (no uvloop).",
        *_speed_caveat(results),
        '- "Raw same transport" is `httpx.AsyncClient` over the SDK\'s own transport with the '
        "headers set by hand. The SDK calls that transport directly (no `AsyncClient.send`: it "
        "never uses redirects, a cookie jar or hooks), so its CPU per request can be *below* the "
        "raw client's: the ratio measures what the SDK adds (auth, retries, deadline, typed "
        "models) net of what it skips.",
        "- Trio has no aiohttp; its default transport is httpcore2's pool, which is immune to the "
        "cancellation pool poisoning of httpcore 1.0.9 but costs ~0.3-0.4x raw httpx's CPU. Its "
        "target is therefore the same transport used raw (at most 1.0x at c16 and c64); the "
        "ratio against httpx is informational.",
        "- The ratios against raw aiohttp are the most sensitive: the floor is so cheap that a "
        "slow spell of the machine moves it by a large share. Each cell's spread and each ratio's "
        "range round by round are printed with it; a target computed from a noisy cell says "
        "NOISY. Rerun one section with `python -m benchmarks --only overhead --concs 16,64 "
        "--clients sdk,aiohttp`.",
        "- Import times are absolute and follow the VM's speed of the day: read them against the "
        "same run's `import httpx` rows (the floor of anything built on httpx). The 120 ms "
        "target was set on the reference baselines' machine, where httpx without its CLI imports "
        "in 69.8 ms; it is checked as the same multiple (1.72x) of this run's figure for that.",
        "- Start-up times are whole processes (the interpreter included) and move with the "
        "machine's load; read the ratio to the bare typer application measured in the same run.",
        "- Batch wall time depends on the single uvicorn worker's latency tail as much as on the "
        "client: raw aiohttp in the same set-up has measured 1.125x ideal on this VM.",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def _speed_caveat(results: dict[str, Any]) -> list[str]:
    """How fast this run's machine was against the reference baselines' (raw httpx at c16)."""
    cells = (results.get("sections", {}).get("overhead") or {}).get("cells", [])
    here = next(
        (c["cpu_us_per_req"] for c in cells if (c["client"], c["method"], c["conc"]) == ("httpx", "get", 16)),
        None,
    )
    if not here:
        return []
    return [
        f"- Raw httpx 0.28.1 at c16 took {here:,.0f} µs of client CPU per GET on this run's machine, "
        f"against ~{REFERENCE_HTTPX_C16_US:,} µs on the one behind the reference baselines "
        f"({here / REFERENCE_HTTPX_C16_US:.1f}x): compare ratios measured in one run, not absolute "
        "figures across runs."
    ]


def _floor_rows(floor: dict[str, Any] | None) -> list[str]:
    """The largest additions of the SDK over raw aiohttp (the floor of the asyncio target)."""
    if not floor:
        return []
    return [
        f"Largest additions over raw aiohttp (profiled {floor['profiled_us_per_req']['raw_transport']} "
        "µs/request; own time, SDK minus aiohttp):",
        "",
        "| function | added µs | SDK calls/req | aiohttp calls/req |",
        "|---|---|---|---|",
        *[
            f"| `{d['function']}` | {d['delta_tottime_us']} | {d['sdk_calls_per_req']} | "
            f"{d['raw_calls_per_req']} |"
            for d in floor["largest_additions"][:15]
        ],
        "",
    ]


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
