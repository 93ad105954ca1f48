"""``--help``, ``--version`` and shell completion start without the SDK: no client, transport,
auth backend or model module is imported, and neither are httpx, aiohttp, anyio or cattrs.
(How long the start takes is measured in ``benchmarks/code_cost.py``; this checks the
mechanism, in a fresh interpreter.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, subprocess_env

HEAVY = ("httpx", "httpcore", "httpcore2", "aiohttp", "anyio", "cattrs", "pyotp", "segno")
# What a start may load of the project: the package roots with the error classes, the tools'
# command trees, the frame that builds them (which defers the SDK to the commands' bodies), and
# the state-file helper it checks local state with (the standard library only).
ALLOWED = {
    "mfa_common",
    "mfa_common._extras",
    "mfa_common._files",
    "mfa_common._lazy",
    "mfa_common.errors",
    "mfa_common.public_api",
    "mfa_common.secret",
    "mfa_common.qr",
    *(
        f"mfa_common.cli.{name}"
        for name in (
            "app",
            "credentials",
            "enrol",
            "errors",
            "jobs",
            "listing",
            "login",
            "output",
            "prompts",
            "session",
            "settings",
        )
    ),
    "mfa_common.cli",
    "quatrix_async",
    "quatrix_async.__main__",
    "quatrix_async.cli",
    "metalcloud_async",
    "metalcloud_async.__main__",
    "metalcloud_async.cli",
}

PROGRAM = """
import json, sys
sys.argv = [{prog!r}, *{args!r}]
try:
    from {package}.__main__ import main
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
own = sorted(m for m in sys.modules if m.split(".")[0] in ("mfa_common", "quatrix_async", "metalcloud_async"))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
with open({out!r}, "w") as handle:
    json.dump({{"code": code, "own": own, "heavy": heavy}}, handle)
"""

TOOLS = {"quatrix_async": "quatrix-async", "metalcloud_async": "metalcloud-async"}


def _start(package: str, args: list[str], env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "modules.json"
    program = PROGRAM.format(prog=TOOLS[package], args=args, package=package, heavy=HEAVY, out=str(out))
    proc = subprocess.run(
        [sys.executable, "-c", program],
        env=subprocess_env(env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), proc.stderr
    result: dict[str, Any] = json.loads(out.read_text())
    result["stdout"] = proc.stdout
    return result


CASES = [
    pytest.param([], {}, id="no-arguments"),
    pytest.param(["--help"], {}, id="help"),
    pytest.param(["-h"], {}, id="dash-h"),
    pytest.param(["mfa", "--help"], {}, id="group-help"),
    pytest.param(["auth", "login", "--help"], {}, id="command-help"),
    pytest.param(["--version"], {}, id="version"),
]


@pytest.mark.parametrize("package", sorted(TOOLS))
@pytest.mark.parametrize(("args", "env"), CASES)
def test_help_and_version_load_no_sdk_module(
    package: str, args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    result = _start(package, args, env, tmp_path)
    assert result["code"] in (0, 2, None), result
    assert result["stdout"].strip(), "the command printed nothing"
    assert result["heavy"] == []
    assert sorted(set(result["own"]) - ALLOWED) == []


@pytest.mark.parametrize("package", sorted(TOOLS))
def test_completion_loads_no_sdk_module(package: str, tmp_path: Path) -> None:
    variable = "_" + TOOLS[package].replace("-", "_").upper() + "_COMPLETE"
    words = TOOLS[package] + " au"
    env = {variable: "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "1", "_TYPER_COMPLETE_ARGS": words}
    result = _start(package, [], env, tmp_path)
    assert result["stdout"].split() == ["auth"]
    assert result["heavy"] == []
    assert sorted(set(result["own"]) - ALLOWED) == []
    script = _start(package, [], {variable: "source_bash"}, tmp_path)
    assert "COMP_WORDS" in script["stdout"]
    assert script["heavy"] == [] and sorted(set(script["own"]) - ALLOWED) == []


def test_the_start_up_program_sees_what_a_command_loads(tmp_path: Path) -> None:
    # The check can fail: a command that does reach the SDK shows up in both lists.
    env = {"QUATRIX_HOST": "http://127.0.0.1:9", "QUATRIX_EMAIL": "a@b.test", "QUATRIX_PASSWORD": "x-pass-1"}
    result = _start("quatrix_async", ["profile"], env, tmp_path)
    assert "httpx" in result["heavy"]
    assert "quatrix_async.client" in result["own"]
