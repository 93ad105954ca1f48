"""``-h`` is ``--help`` everywhere, as in gh and aws."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app as metalcloud_app
from quatrix_async.cli import build_app as quatrix_app


@pytest.mark.parametrize("build", [quatrix_app, metalcloud_app])
@pytest.mark.parametrize("path", [[], ["auth"], ["auth", "login"], ["apply"]])
def test_dash_h_prints_the_help(build: Any, path: list[str]) -> None:
    short = CliRunner().invoke(build(), [*path, "-h"], env={"COLUMNS": "200"})
    long = CliRunner().invoke(build(), [*path, "--help"], env={"COLUMNS": "200"})
    assert short.exit_code == 0, short.output
    assert short.stdout == long.stdout
    assert "Usage:" in short.stdout
