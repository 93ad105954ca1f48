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
    from metalcloud_async.models import (
        EmailStatus,
        Language,
        LastLoginType,
        PlanType,
        Provider,
        SshKeyStatus,
        SuspendReasonType,
        UpdateUser,
        User,
        UserConfiguration,
        UserSshKey,
        UserSuspendReason,
    )
    from quatrix_async import QuatrixClient
    from quatrix_async.models import AccountStatus, ProfileResp
    from mfa_common.xmfa.models import Role, UserAuth


    async def main() -> None:
        async with MetalCloudClient("https://api.example.com", api_key="1:k") as metal:
            assert_type(metal, MetalCloudClient)
        async with XMfaClient("https://api.example.com") as xmfa:
            assert_type(xmfa, XMfaClient)
        async with QuatrixClient("https://api.example.com") as quatrix:
            assert_type(quatrix, QuatrixClient)
        async with BaseClient("https://api.example.com") as base:
            assert_type(base, BaseClient)


    def fields(user: UserAuth, profile: ProfileResp) -> None:
        # A response's enum field may hold the raw string of a value this SDK does not know.
        assert_type(user.role, Role | str | None)
        assert_type(profile.account_status, AccountStatus | str | None)


    def metalcloud_fields(
        user: User, config: UserConfiguration, key: UserSshKey, reason: UserSuspendReason
    ) -> None:
        assert_type(user.provider, Provider | str | None)
        assert_type(user.plan_type, PlanType | str | None)
        assert_type(user.email_status, EmailStatus | str | None)
        assert_type(config.language, Language | str | None)
        assert_type(config.last_login_type, LastLoginType | str | None)
        assert_type(key.status, SshKeyStatus | str | None)
        assert_type(reason.type, SuspendReasonType | str | None)
        # A value read from a configuration goes back in an update unchanged.
        UpdateUser(language=config.language, provider=config.provider)
    """
)


def test_async_with_gives_the_clients_own_type(tmp_path: Path) -> None:
    path = tmp_path / "snippet.py"
    path.write_text(SNIPPET)
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(path)]
    )
    assert status == 0, out + err


def test_an_unknown_enum_value_is_kept_as_its_string() -> None:
    from mfa_common.secret import Secret
    from mfa_common.xmfa.models import Role, UserAuth, converter

    known = converter.structure({"token": "t", "id": "1", "user": "u", "role": "owner"}, UserAuth)
    unknown = converter.structure({"token": "t", "id": "1", "user": "u", "role": "auditor"}, UserAuth)
    assert known.role is Role.OWNER
    assert unknown.role == "auditor" and not isinstance(unknown.role, Role)
    assert isinstance(known.token, Secret)
