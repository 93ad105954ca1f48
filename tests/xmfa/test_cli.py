"""The command-line fake: account files and the start banner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfa_common.xmfa.testing.__main__ import banner, build_fake, build_parser


def test_demo_banner_lists_accounts_and_factors() -> None:
    text = banner(build_fake(build_parser().parse_args(["--seed", "1"])))
    assert "alice / alice-password" in text and "MFA off" in text
    assert "totp_secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in text and "MLNSPOB2L2ZRO2D5" in text


def test_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([{"username": "dave", "password": "dave-password", "mfa": True}]))
    fake = build_fake(build_parser().parse_args(["--accounts", str(path)]))
    assert [u.username for u in fake.users] == ["dave"]  # the demo accounts are replaced
    assert fake.user("dave").mfa and len(fake.user("dave").recovery_codes) == 6
    path.write_text(json.dumps([{"username": "dave", "password": "x", "colour": "red"}]))
    with pytest.raises(ValueError, match="entry 0 has unknown keys: colour"):
        build_fake(build_parser().parse_args(["--accounts", str(path)]))
