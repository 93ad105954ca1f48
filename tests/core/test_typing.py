"""Static types users see: ``async with`` gives the client's own type, not ``Any``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = textwrap.dedent(
    """
    from typing_extensions import assert_type

    from mfa_common.client import BaseClient
    from mfa_common.xmfa import XMfaClient
    from metalcloud_async import MetalCloudClient
    from quatrix_async import QuatrixClient


    async def main() -> None:
        async with MetalCloudClient("https://api.example.com", api_key="1:k") as metal:
            assert_type(metal, MetalCloudClient)
        async with XMfaClient("https://api.example.com") as xmfa:
            assert_type(xmfa, XMfaClient)
        async with QuatrixClient("https://api.example.com") as quatrix:
            assert_type(quatrix, QuatrixClient)
        async with BaseClient("https://api.example.com") as base:
            assert_type(base, BaseClient)
    """
)


def test_async_with_gives_the_clients_own_type(tmp_path: Path) -> None:
    path = tmp_path / "snippet.py"
    path.write_text(SNIPPET)
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(path)]
    )
    assert status == 0, out + err
