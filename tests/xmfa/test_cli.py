"""The command-line fake: account files and the start banner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfa_common.testing.__main__ import banner, load_accounts
from mfa_common.testing.xmfa_fake import DEMO_ACCOUNTS, create_xmfa_app


def test_demo_banner_lists_accounts_and_factors() -> None:
    text = banner(create_xmfa_app(DEMO_ACCOUNTS, seed=1))
    assert "alice / alice-password" in text and "MFA off" in text
    assert "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in text and "MLNSPOB2L2ZRO2D5" in text


def test_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([{"username": "dave", "password": "dave-password", "mfa": True}]))
    fake = create_xmfa_app(load_accounts(str(path)))
    assert fake.user("dave").mfa and len(fake.user("dave").recovery_codes) == 6
    path.write_text(json.dumps([{"username": "dave", "password": "x", "colour": "red"}]))
    with pytest.raises(SystemExit):
        load_accounts(str(path))
