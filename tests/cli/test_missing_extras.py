"""Without an extra, the tools and the fakes' entry points print one line with the exact install
command and exit 2 (no traceback). The extra's modules are blocked by a ``sys.meta_path`` finder
installed from a ``sitecustomize`` module, so nothing is uninstalled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, subprocess_env

BLOCKER = """
import os
import sys

_BLOCKED = set(filter(None, os.environ.get("MFA_TEST_BLOCK", "").split(",")))


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
"""


@pytest.fixture(scope="module")
def blocker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return folder


def _run(command: list[str], blocked: str, blocker_dir: Path) -> subprocess.CompletedProcess[str]:
    env = subprocess_env({"MFA_TEST_BLOCK": blocked})
    env["PYTHONPATH"] = str(blocker_dir) + os.pathsep + env["PYTHONPATH"]
    return subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def _assert_one_line(result: subprocess.CompletedProcess[str], extra: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'mfa-sdks[{extra}]'" in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("package", ["quatrix_async", "metalcloud_async"])
@pytest.mark.parametrize("blocked", ["typer", "rich", "segno"])
def test_tool_without_the_cli_extra(package: str, blocked: str, blocker_dir: Path) -> None:
    _assert_one_line(_run([sys.executable, "-m", package, "--help"], blocked, blocker_dir), "cli")


@pytest.mark.parametrize("script", ["quatrix-async", "metalcloud-async"])
def test_console_script_without_the_cli_extra(script: str, blocker_dir: Path) -> None:
    path = Path(sys.executable).parent / script
    if not path.exists():
        pytest.skip(f"{script} is not installed in this environment")
    _assert_one_line(_run([str(path), "login"], "typer", blocker_dir), "cli")


@pytest.mark.parametrize(
    "package", ["quatrix_async.testing", "metalcloud_async.testing", "mfa_common.xmfa.testing"]
)
@pytest.mark.parametrize("blocked", ["starlette", "uvicorn"])
def test_fake_without_the_fakes_extra(package: str, blocked: str, blocker_dir: Path) -> None:
    _assert_one_line(_run([sys.executable, "-m", package, "--port", "0"], blocked, blocker_dir), "fakes")


def test_library_import_names_the_extra_and_the_sdk_needs_none(blocker_dir: Path) -> None:
    code = (
        "import quatrix_async, metalcloud_async, mfa_common\n"
        "try:\n"
        "    import quatrix_async.testing\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    result = _run([sys.executable, "-c", code], "starlette,uvicorn,typer,rich,segno", blocker_dir)
    assert result.returncode == 0, result.stderr
    assert "pip install 'mfa-sdks[fakes]'" in result.stdout
