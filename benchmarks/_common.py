"""Helpers shared by the benchmark drivers: pinning, bounded subprocesses, the uvicorn server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
SERVER_CPU = 0
CLIENT_CPU = 1


def can_pin() -> bool:
    """True when ``taskset`` exists and there are at least two CPUs to separate the sides."""
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(cmd: Sequence[str], cpu: int) -> list[str]:
    """``cmd`` prefixed with ``taskset -c cpu`` when pinning is possible."""
    if can_pin():
        return ["taskset", "-c", str(cpu), *cmd]
    return list(cmd)


def child_env() -> dict[str, str]:
    """The environment for child processes: the project root importable, no bytecode noise."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONASYNCIODEBUG", None)
    env.pop("PYTHONDEVMODE", None)
    return env


def run_json(cmd: Sequence[str], *, timeout: float, cpu: int | None = CLIENT_CPU) -> dict[str, Any]:
    """Run a child that prints one JSON object as its last stdout line; return it.

    A timeout or a failing child becomes ``{"error": ...}`` rather than an exception, so one
    broken measurement does not stop the suite.
    """
    full = pinned(cmd, cpu) if cpu is not None else list(cmd)
    try:
        proc = subprocess.run(
            full, capture_output=True, text=True, timeout=timeout, env=child_env(), cwd=ROOT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s: {' '.join(cmd[:6])}"}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        return {"error": "no JSON on the last line: " + lines[-1][:200]}
    return result


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, timeout: float = 15.0) -> bool:
    """Poll until something accepts on ``127.0.0.1:port`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


class Server:
    """A uvicorn process serving ``app`` on 127.0.0.1, pinned to the server CPU."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


@contextlib.contextmanager
def uvicorn_server(app: str = "benchmarks.server_app:app", *, http: str = "httptools") -> Iterator[Server]:
    """Start ``uvicorn app`` (1 worker, asyncio loop) pinned to CPU 0; stop it on exit."""
    port = free_port()
    cmd = [
        PYTHON,
        "-m",
        "uvicorn",
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "asyncio",
        "--http",
        http,
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(
        pinned(cmd, SERVER_CPU),
        env=child_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not wait_for_port(port):
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise RuntimeError("uvicorn did not start: " + err.decode(errors="replace")[-500:])
        yield Server(proc, port)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def emit(result: dict[str, Any]) -> None:
    """Print one JSON result line (the protocol between a child and its driver)."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
