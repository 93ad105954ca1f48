"""The README runs as written, the way a user runs it.

In a fresh virtual environment holding nothing but pip, the "Try the examples" shell block runs
for real in bash (the environment activated, from the root of this checkout, as the README
says): it installs the user extras, starts the three fakes in the background and exports the
settings. Then every Python block of the README runs verbatim, in README order, each in a
fresh interpreter (``python FILE``) with that shell's environment and working directory, all
against that one set of fakes. A block marked ``<!-- serve: app.py /me -->`` is a service: it is
saved under that name and served with ``uvicorn app:app``, and each path listed must answer
200. Nothing is rewritten: no host swapped, no account added, no registry cleared. A block that
works only in isolation, only after rewriting, or only with a dev dependency fails here. The
fakes are stopped at the end.

The run is one test (``test_the_readme_runs_as_written``): the blocks depend on their order, as
they do for a user. The environment is built once per test session; the fixed ports of the block
are held under a lock file, so two runs on one machine take turns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .markdown_blocks import Block, fenced_blocks, python_blocks

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TRY_HEADING = "## Try the examples"
#: One block may wait for the next 30-second TOTP step, and its first import is cold.
BLOCK_TIMEOUT = 180.0
#: Making the environment and installing the extras (a wheel of this checkout, the dependencies).
SETUP_TIMEOUT = 900.0
#: Two runs on one machine (two checkouts) would fight over the block's fixed ports.
PORTS_LOCK = Path(tempfile.gettempdir()) / "mfa-sdks-readme-examples.lock"
LOCK_WAIT = 900.0


def try_block() -> Block:
    """The shell block of the README's "Try the examples" section."""
    lines = README.read_text(encoding="utf-8").splitlines()
    heading = lines.index(TRY_HEADING) + 1
    end = next((n for n in range(heading, len(lines)) if lines[n].startswith("## ")), len(lines))
    shell = [
        b for b in fenced_blocks(README, "README.md") if heading < b.line <= end and b.language == "bash"
    ]
    assert len(shell) == 1, f"{TRY_HEADING} must hold exactly one bash block"
    return shell[0]


PROGRAMS = python_blocks(README, "README.md")


def _installed_extras(block: Block) -> set[str]:
    found = re.findall(r"pip install [^\n]*'\.\[([\w,-]+)\]'", block.text)
    assert found, "the block installs nothing from this checkout"
    return {extra for group in found for extra in group.split(",")}


# --------------------------------------------------------------------------- the shell


@dataclass
class Shell:
    """What the "Try the examples" block leaves behind: its environment and directory."""

    env: dict[str, str]
    cwd: Path
    python: str


def _base_environment(home: Path, scratch: Path) -> dict[str, str]:
    """A user's shell: the system PATH (not the dev environment's), a home of its own (so the
    step state, config and saved sessions start empty), the machine's pip settings and cache."""
    dev_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != dev_bin
    )
    env = {
        "PATH": path,
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_") and k not in env})
    return env


@contextlib.contextmanager
def _ports_lock() -> Iterator[None]:
    with PORTS_LOCK.open("a") as handle:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another README run has held {PORTS_LOCK} for {LOCK_WAIT:.0f} s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """End the block's shell and everything it left running (the fakes), by its process group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _check_fakes_started(cwd: Path) -> None:
    """Each fake the block started says it listens (else its log says why: a busy port, ...)."""
    logs = sorted(cwd.glob("*.log"))
    assert logs, f"the block left no fake's log in {cwd}"
    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        assert "Listening on" in text, f"{log.name}: the fake did not start:\n{text[-1500:]}"


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    base = tmp_path_factory.mktemp("readme")
    home, scratch, venv = base / "home", base / "tmp", base / "venv"
    home.mkdir()
    scratch.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=SETUP_TIMEOUT)
    block = try_block()
    captured_env, captured_cwd, output = base / "env", base / "cwd", base / "shell.out"
    script = base / "try.sh"
    script.write_text(
        # As the README says: from the root of the checkout, in a virtual environment; then the
        # block as written; then what it left: its environment and its directory.
        f"set -e\n. '{venv}/bin/activate'\ncd '{ROOT}'\n{block.text}\n"
        f"env -0 > '{captured_env}'\npwd > '{captured_cwd}'\n",
        encoding="utf-8",
    )
    with _ports_lock(), output.open("wb") as out:
        process = subprocess.Popen(
            ["bash", str(script)],
            env=_base_environment(home, scratch),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the fakes are stopped with it
        )
        try:
            status = process.wait(timeout=SETUP_TIMEOUT)
            shown = output.read_text(encoding="utf-8", errors="replace")[-4000:]
            assert status == 0, f"{block.where}: the block failed (exit {status}):\n{shown}"
            env = dict(
                item.split("=", 1)
                for item in captured_env.read_text(encoding="utf-8").split("\0")
                if "=" in item
            )
            cwd = Path(captured_cwd.read_text(encoding="utf-8").strip())
            _check_fakes_started(cwd)
            python = shutil.which("python", path=env["PATH"])
            assert python and Path(python).parent == venv / "bin", f"python on the block's PATH: {python}"
            yield Shell(env, cwd, python)
        finally:
            _stop_group(process)


# --------------------------------------------------------------------------- the blocks


def run_program(block: Block, python: str, cwd: Path, env: dict[str, str]) -> str:
    """Run ``block`` as a user does: saved as a file, ``python FILE``; its output, or an
    AssertionError naming the block with what it printed."""
    path = cwd / f"readme_{block.line}.py"
    path.write_text(block.text, encoding="utf-8")
    try:
        result = subprocess.run(
            [python, path.name],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{block.where} ran for more than {BLOCK_TIMEOUT:.0f} s") from exc
    if result.returncode != 0:
        raise AssertionError(
            f"{block.where} failed (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
        )
    return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_service(block: Block, python: str, cwd: Path, env: dict[str, str]) -> None:
    """Save a service block under its name, serve it with ``uvicorn <module>:app`` and GET each
    of its paths (200 wanted); then stop it (its lifespan closes the client)."""
    filename, *paths = block.serve
    assert paths, f"{block.where}: the serve marker names no path to GET"
    (cwd / filename).write_text(block.text, encoding="utf-8")
    port = _free_port()
    log = cwd / f"{Path(filename).stem}-uvicorn.out"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [python, "-m", "uvicorn", f"{Path(filename).stem}:app", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + BLOCK_TIMEOUT
            with httpx.Client(base_url=base, timeout=BLOCK_TIMEOUT) as http:
                while True:
                    assert server.poll() is None, f"{block.where}: uvicorn ended:\n{log.read_text()[-3000:]}"
                    try:
                        http.get("/")
                        break
                    except httpx.TransportError:
                        assert time.monotonic() < deadline, f"{block.where}: uvicorn never answered"
                        time.sleep(0.1)
                for route in paths:
                    response = http.get(route)
                    assert response.status_code == 200, (
                        f"{block.where}: GET {route} -> {response.status_code} {response.text[:500]}\n"
                        f"{log.read_text()[-3000:]}"
                    )
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_the_readme_runs_as_written(shell: Shell) -> None:
    started = time.monotonic()
    for block in PROGRAMS:
        if block.serve:
            run_service(block, shell.python, shell.cwd, shell.env)
        else:
            run_program(block, shell.python, shell.cwd, shell.env)
    # Nothing of the dev extra was there to lean on.
    probe = subprocess.run(
        [shell.python, "-c", "import pytest"], env=shell.env, capture_output=True, check=False
    )
    assert probe.returncode != 0, "the examples' environment has the dev tools: it is not a user's"
    print(f"{len(PROGRAMS)} README programs ran in {time.monotonic() - started:.0f} s")


# --------------------------------------------------------------------------- the rules, read fast


def test_every_python_block_of_the_readme_is_a_whole_program() -> None:
    """No top-level ``await`` (that would need ``python -m asyncio``): each block compiles as a
    module, and none is marked as not run."""
    assert len(PROGRAMS) >= 6
    for block in PROGRAMS:
        assert not block.not_run, f"{block.where} is not run: every README block runs"
        compile(block.text, block.where, "exec", dont_inherit=True)  # a top-level await: SyntaxError


def test_the_try_block_installs_user_extras_only_and_starts_every_fake() -> None:
    block = try_block()
    extras = _installed_extras(block)
    declared = PYPROJECT["project"]["optional-dependencies"]
    assert extras <= set(declared), extras - set(declared)
    assert not extras & {"dev", "docs", "bench"}, "the examples must not need a dev extra"
    for module in ("quatrix_async.testing", "metalcloud_async.testing", "mfa_common.xmfa.testing"):
        assert re.search(rf"python -m {re.escape(module)} .*&\s*(#.*)?$", block.text, re.M), module
    programs = "".join(b.text for b in PROGRAMS)
    read = set(re.findall(r'os\.environ(?:\.get\(|\[)"(\w+)"', programs))
    exported = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", block.text))
    assert read and read <= exported, f"read but not exported by the block: {read - exported}"


def test_the_otel_extra_holds_what_the_tracing_example_imports() -> None:
    tracing = [b for b in PROGRAMS if "enable_tracing" in b.text]
    assert tracing, "the README lost its tracing example"
    otel = " ".join(PYPROJECT["project"]["optional-dependencies"]["otel"])
    if "opentelemetry.sdk" in tracing[0].text:
        assert "opentelemetry-sdk" in otel
    assert "otel" in _installed_extras(try_block())


def test_the_fastapi_example_is_a_served_app_with_its_extra() -> None:
    services = [b for b in PROGRAMS if b.serve]
    assert services and "FastAPI(" in services[0].text, "the README lost its FastAPI service"
    assert services[0].serve[0] == "app.py" and "uvicorn app:app" in README.read_text(encoding="utf-8")
    assert any("fastapi" in dep for dep in PYPROJECT["project"]["optional-dependencies"]["fastapi"])
    assert "fastapi" in _installed_extras(try_block())


def test_a_failing_block_is_reported_with_its_place_and_output(tmp_path: Path) -> None:
    broken = Block(README, 7, "python", "print('before')\nraise SystemExit('no such account')\n", "README.md")
    with pytest.raises(
        AssertionError, match=r"README.md:7 failed \(exit 1\):\nbefore\n[\s\S]*no such account"
    ):
        run_program(broken, sys.executable, tmp_path, dict(os.environ))
    fine = Block(README, 8, "python", "import os\nprint(os.environ['ONLY_HERE'])\n", "README.md")
    assert run_program(fine, sys.executable, tmp_path, {**os.environ, "ONLY_HERE": "yes"}) == "yes\n"
