"""``users list`` and ``users get`` in both tools, as a gh or aws user expects them: a table, or
JSON with every field or the ones picked (``--json id,email`` as gh reads it, or ``--fields``),
pages fetched under the hood, a wrong field refused before any login."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from metalcloud_async.cli import build_app as metalcloud_app
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from quatrix_async.cli import build_app as quatrix_app
from quatrix_async.testing import QuatrixFake

from .conftest import START

PASSWORD = "user-pass-Users-3"


class PageCounter:
    """Counts the ``GET .../users`` pages the server answers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pages = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].endswith("/api/v2/users"):
            self.pages += 1
        await self.app(scope, receive, send)


@pytest.fixture
def quatrix(socket_server: Any, base_env: dict[str, str | None]) -> Any:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, seed=17)
    swap.app = fake
    admin = fake.add_user(email="admin@acme.test", password=PASSWORD, pin="13579", admin=True, name="Ada")
    users = [fake.add_user(email=f"u{i}@acme.test", password=PASSWORD, mfa=bool(i % 2)) for i in range(4)]
    env = dict(
        base_env, QUATRIX_HOST=url, QUATRIX_EMAIL=admin.email, QUATRIX_PASSWORD=PASSWORD, QUATRIX_PIN="13579"
    )

    def invoke(args: list[str], **extra: str | None) -> Any:
        return CliRunner().invoke(quatrix_app(clock=clock), args, env={**env, **extra})

    return fake, url, admin, users, invoke


def test_quatrix_users_list_json_has_every_user_and_field(quatrix: Any) -> None:
    _, _, admin, users, invoke = quatrix
    result = invoke(["users", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [u["email"] for u in listed] == [admin.email, *(u.email for u in users)]
    assert listed[0]["administrator"] is True and listed[0]["name"] == "Ada"
    assert {"id", "email", "name", "administrator", "auth_methods", "last_login"} <= set(listed[0])
    assert listed[2]["auth_methods"] == ["2FA"] and listed[1]["auth_methods"] == []


def test_quatrix_users_list_picks_fields_as_gh_does(quatrix: Any) -> None:
    _, _, admin, users, invoke = quatrix
    for args in (["--json", "email,id"], ["--json=email,id"], ["--json", "--fields", "email,id"]):
        result = invoke(["users", "list", *args])
        assert result.exit_code == 0, (args, result.output)
        listed = json.loads(result.stdout)
        assert [list(u) for u in listed] == [["email", "id"]] * 5, args
        assert listed[1] == {"email": users[0].email, "id": users[0].id}
    table = invoke(["users", "list", "--fields", "email"])
    assert table.exit_code == 0, table.output
    assert admin.email in table.stdout and "5 users." in table.stdout and admin.id not in table.stdout


def test_quatrix_users_list_table(quatrix: Any) -> None:
    _, _, admin, users, invoke = quatrix
    result = invoke(["users", "list"])
    assert result.exit_code == 0, result.output
    assert all(u.email in result.stdout for u in [admin, *users])
    assert "5 users." in result.stdout


def test_an_unknown_field_is_refused_before_any_login(quatrix: Any) -> None:
    fake, _, _, _, invoke = quatrix
    result = invoke(["users", "list", "--fields", "email,colour"])
    assert result.exit_code == 2
    assert "unknown field 'colour'" in result.stderr and "email" in result.stderr
    assert fake.counts["basic_login"] == 0


def test_quatrix_users_get_by_id_or_email(quatrix: Any) -> None:
    _, url, _, users, invoke = quatrix
    by_email = invoke(["users", "get", users[1].email, "--json"])
    assert by_email.exit_code == 0, by_email.output
    assert json.loads(by_email.stdout)["id"] == users[1].id
    by_id = invoke(["users", "get", users[1].id, "--json", "email,auth_methods"])
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.stdout) == {"email": users[1].email, "auth_methods": ["2FA"]}
    table = invoke(["users", "get", users[1].email])
    assert table.exit_code == 0 and users[1].id in table.stdout
    missing = invoke(["users", "get", "nobody@acme.test"])
    assert missing.exit_code == 1
    assert missing.stderr.strip() == f"error: {url} has no user 'nobody@acme.test'"


def test_quatrix_users_list_needs_an_administrator(quatrix: Any) -> None:
    fake, url, _, _, invoke = quatrix
    fake.add_user(email="plain@acme.test", password=PASSWORD, pin="24680")
    result = invoke(["users", "list"], QUATRIX_EMAIL="plain@acme.test", QUATRIX_PIN="24680")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {url} refused") and "needs an administrator" in result.stderr


@pytest.fixture
def metalcloud(socket_server: Any, base_env: dict[str, str | None]) -> Any:
    swap, url = socket_server
    clock = FakeClock(START)
    fake = MetalCloudFake(clock=clock)
    counter = PageCounter(fake)
    swap.app = counter
    admin = fake.add_user("admin@metal.test", PASSWORD, access_level="admin", display_name="Ada")
    users = [fake.add_user(f"m{i:03d}@metal.test", PASSWORD, archived=i == 7) for i in range(130)]
    env = dict(base_env, METALCLOUD_URL=url, METALCLOUD_API_KEY=admin.api_key)

    def invoke(args: list[str], **extra: str | None) -> Any:
        return CliRunner().invoke(metalcloud_app(clock=clock), args, env={**env, **extra})

    return fake, url, admin, users, counter, invoke


def test_metalcloud_users_list_pages_under_the_hood(metalcloud: Any) -> None:
    _, _, admin, users, counter, invoke = metalcloud
    result = invoke(["users", "list", "--json", "id,email"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    expected = [admin, *(u for u in users if not u.archived)]
    assert [u["email"] for u in listed] == [u.email for u in expected]
    assert listed[0] == {"id": admin.id, "email": admin.email}
    assert counter.pages == 2  # 130 users, 100 a page

    everyone = invoke(["users", "list", "--include-archived", "--json"])
    assert everyone.exit_code == 0, everyone.output
    rows = json.loads(everyone.stdout)
    assert len(rows) == 131 and {"id", "email", "display_name", "access_level", "archived"} <= set(rows[0])


def test_metalcloud_users_get(metalcloud: Any) -> None:
    _, url, _, users, _, invoke = metalcloud
    result = invoke(["users", "get", str(users[3].id), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["email"] == users[3].email and data["two_factor_enabled"] is False
    by_email = invoke(["users", "get", users[4].email, "--json", "id"])
    assert by_email.exit_code == 0, by_email.output
    assert json.loads(by_email.stdout) == {"id": users[4].id}
    missing = invoke(["users", "get", "99999"])
    assert missing.exit_code == 1
    assert missing.stderr.strip() == f"error: {url} has no user '99999'"
