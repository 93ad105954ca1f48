"""The fakes as users meet them in their own tests: ``serve()`` with ``with`` or ``async with``,
one vocabulary across the three fakes (each an ASGI app, ``add_user`` with the same shape and
keywords, ``totp_secret``, ``counts``, ``--accounts`` files of ``add_user`` keywords), and the
``python -m <package>.testing`` commands (complete ``--help``, one clear line and exit 2 on a
busy port)."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.testing import generate_base32_secret, serve
from mfa_common.testing._accounts import check_accounts
from mfa_common.xmfa import XMfaClient
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import MfaCodeRejectedError, QuatrixClient
from quatrix_async.testing import QuatrixFake

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["mfa_common.xmfa.testing", "quatrix_async.testing", "metalcloud_async.testing"]
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX7"


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(5)
        return probe.connect_ex(("127.0.0.1", port)) != 0


# --------------------------------------------------------------------------- serve()


@pytest.mark.anyio
async def test_serve_works_with_async_with_and_stops_on_exit() -> None:
    fake = QuatrixFake(clock=FakeClock())
    fake.add_user("ops@example.com", "ops-password", admin=True)
    async with serve(fake) as server:
        async with QuatrixClient(server.base_url, email="ops@example.com", password="ops-password") as client:
            me = await client.profile.get()
        assert me.email == "ops@example.com"
        port = server.port
        assert server.thread.is_alive()
    assert not server.thread.is_alive()
    assert _refused(port)


@pytest.mark.anyio
async def test_the_event_loop_runs_other_tasks_while_the_server_starts() -> None:
    """Entering ``async with serve()`` waits in a worker thread, not on the loop: a task
    started before it gets to run before the server is up."""
    ran: list[str] = []

    async def other() -> None:
        ran.append("other task")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        async with serve(QuatrixFake()) as server:
            ran.append("server up")
            assert server.port > 0
    assert ran == ["other task", "server up"]


def test_serve_still_works_as_a_plain_with_block() -> None:
    fake = QuatrixFake()
    fake.add_user("ops@example.com", "ops-password")
    with serve(fake) as server:
        response = httpx.get(server.url("/api/1.0/session/login"), auth=("ops@example.com", "ops-password"))
        assert response.status_code == 200
    assert _refused(server.port)


def test_one_serve_object_runs_one_server_at_a_time() -> None:
    running = serve(QuatrixFake())
    with running, pytest.raises(RuntimeError, match="already running"):
        running.__enter__()
    with running as again:  # usable again once stopped
        assert again.port > 0


# --------------------------------------------------------------------------- QuatrixFake.add_user


@pytest.mark.anyio
async def test_add_user_makes_accounts_that_log_in_with_their_factor() -> None:
    clock = FakeClock()
    fake = QuatrixFake(clock=clock)
    ops = fake.add_user("ops@example.com", "ops-password", totp_secret=SECRET, admin=True, name="Ops")
    bob = fake.add_user("bob@example.com", "bob-password", pin="12345")
    plain = fake.add_user("carol@example.com", "carol-password")
    assert (ops.mfa_kind, bob.mfa_kind, plain.mfa_kind) == ("2fa", "pin", "none")
    transport = httpx.ASGITransport(fake)
    async with QuatrixClient(
        "http://127.0.0.1:9",
        email="ops@example.com",
        password="ops-password",
        totp_secret=SECRET,
        clock=clock,
        transport=transport,
    ) as client:
        assert len(await client.users.list()) == 3  # admin=True may list users
    async with QuatrixClient(
        "http://127.0.0.1:9",
        email="bob@example.com",
        password="bob-password",
        pin="12345",
        transport=transport,
    ) as client:
        assert (await client.profile.get()).email == "bob@example.com"
    async with QuatrixClient(
        "http://127.0.0.1:9",
        email="bob@example.com",
        password="bob-password",
        pin="54321",
        transport=transport,
    ) as client:
        with pytest.raises(MfaCodeRejectedError):
            await client.profile.get()
    assert fake.counts["mfa_step"] >= 2


def test_add_user_refuses_two_factors_and_a_duplicate() -> None:
    fake = QuatrixFake()
    with pytest.raises(ValueError, match="not both"):
        fake.add_user("x@example.com", "pw", totp_secret=SECRET, pin="12345")
    fake.add_user("x@example.com", "pw")
    with pytest.raises(ValueError, match="exists"):
        fake.add_user("X@example.com", "pw")


# --------------------------------------------------------------------------- one vocabulary


@dataclass(frozen=True)
class Kind:
    """One fake as a user meets it: the class, its login keyword (what the API's login and the
    SDK client's constructor call it), the client, a call that needs a login, its command."""

    fake: Callable[..., Any]
    login: str
    login_value: str
    client: type[Any]
    call: Callable[[Any], Awaitable[Any]]
    module: str


KINDS = {
    "quatrix": Kind(
        QuatrixFake,
        "email",
        "ops@example.com",
        QuatrixClient,
        lambda c: c.profile.get(),
        "quatrix_async.testing",
    ),
    "metalcloud": Kind(
        MetalCloudFake,
        "email",
        "ops@example.com",
        MetalCloudClient,
        lambda c: c.user.get(),
        "metalcloud_async.testing",
    ),
    "xmfa": Kind(XMfaFake, "username", "ops", XMfaClient, lambda c: c.user.get(), "mfa_common.xmfa.testing"),
}
FAKE_CLASSES = [QuatrixFake, MetalCloudFake, XMfaFake]


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_add_user_has_one_shape_on_every_fake(kind: Kind) -> None:
    parameters = list(inspect.signature(kind.fake.add_user).parameters.values())[1:]  # after self
    login, password, *rest = parameters
    assert (login.name, login.kind) == (kind.login, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    assert (password.name, password.kind) == ("password", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest)
    assert {"totp_secret", "mfa"} <= {p.name for p in rest}
    # The login keyword is the SDK client's.
    assert kind.login in inspect.signature(kind.client).parameters


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
async def test_every_fake_is_an_asgi_app_that_logs_a_totp_user_in(kind: Kind) -> None:
    clock = FakeClock()
    secret = generate_base32_secret(20)
    fake = kind.fake(clock=clock)
    user = fake.add_user(kind.login_value, "ops-password-1", totp_secret=secret)
    assert (user.totp_secret, user.mfa) == (secret, True)
    generated = fake.add_user("gen@example.com" if kind.login == "email" else "gen", "pw-gen-12345", mfa=True)
    assert generated.mfa and len(generated.totp_secret) == 32
    credentials = {kind.login: kind.login_value, "password": "ops-password-1", "totp_secret": secret}
    async with kind.client(
        "http://127.0.0.1", clock=clock, transport=httpx.ASGITransport(app=fake), **credentials
    ) as client:
        await kind.call(client)
    assert sum(fake.counts.values()) > 0
    async with serve(fake) as server, kind.client(server.base_url, clock=clock, **credentials) as client:
        await kind.call(client)


@pytest.mark.parametrize("cls", FAKE_CLASSES)
def test_no_second_name_is_left(cls: type[Any]) -> None:
    """Renamed, not aliased (CHANGELOG lists the old names)."""
    fake = cls()
    for old in (
        "add_account",
        "app",
        "stats",
        "mint_jwt",
        "logins",
        "password_logins",
        "logouts",
        "lockouts",
    ):
        assert not hasattr(fake, old), old
    user = fake.add_user("x@example.com" if cls is not XMfaFake else "x", "x-password-1", mfa=True)
    for old in ("secret", "mfa_secret", "pending_secret", "pending", "two_factor_enabled"):
        assert not hasattr(user, old), old
    module = importlib.import_module(cls.__module__.rsplit("._", 1)[0])
    for old in ("create_app", "create_metalcloud_app", "create_xmfa_app", "FakeAccount", "OutboxMessage"):
        assert not hasattr(module, old), old


def _build(kind: Kind, *args: str) -> Any:
    """The fake ``python -m <module> ARGS`` would serve (without serving it)."""
    main = importlib.import_module(f"{kind.module}.__main__")
    built = main.build_fake(main.build_parser().parse_args(list(args)))
    return built[0] if isinstance(built, tuple) else built


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_accounts_files_hold_add_user_keywords(
    kind: Kind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "accounts.json"
    account = {kind.login: kind.login_value, "password": "ops-password-1", "totp_secret": SECRET}
    path.write_text(json.dumps([account]))
    fake = _build(kind, "--accounts", str(path))
    assert [u.totp_secret for u in fake.users] == [SECRET]  # the file replaces the demo accounts
    for bad, words in (
        ({**account, "secret": SECRET}, "unknown keys: secret"),
        ({**account, "totp_secret": 7}, "totp_secret cannot be 7"),
        ({**account, "mfa": "yes"}, 'mfa cannot be "yes"'),
        ({"password": "x"}, f"needs {kind.login}"),
    ):
        path.write_text(json.dumps([account, bad]))
        with pytest.raises(ValueError, match=f"entry 1.*{re.escape(words)}"):
            _build(kind, "--accounts", str(path))
    # From the command line: a usage error (exit status 2) naming the entry, before listening.
    main = importlib.import_module(f"{kind.module}.__main__")
    with pytest.raises(SystemExit) as exited:
        main.main(["--port", "0", "--accounts", str(path)])
    assert exited.value.code == 2
    assert f"{path}: entry 1 needs {kind.login}" in capsys.readouterr().err


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_demo_accounts_are_add_user_keywords_and_their_secrets_are_printed(kind: Kind) -> None:
    main = importlib.import_module(f"{kind.module}.__main__")
    demo = main.DEMO_ACCOUNTS
    fake = kind.fake()
    assert check_accounts(list(demo), fake.add_user, source="demo") == [dict(a) for a in demo]
    secrets = [a["totp_secret"] for a in demo if "totp_secret" in a]
    built = main.build_fake(main.build_parser().parse_args([]))
    text = main.banner(*built) if isinstance(built, tuple) else main.banner(built)
    assert secrets and all(f"totp_secret {secret}" in text for secret in secrets)


# --------------------------------------------------------------------------- python -m <pkg>.testing


@pytest.mark.parametrize("module", MODULES)
def test_every_option_of_the_command_is_explained(module: str) -> None:
    parser: argparse.ArgumentParser = importlib.import_module(f"{module}.__main__").build_parser()
    assert parser.prog == f"python -m {module}"
    for action in parser._actions:
        assert action.help, f"{module}: {action.option_strings} has no help text"
    text = parser.format_help()
    assert "examples:" in text
    assert f"python -m {module} --port" in text
    assert "--accounts FILE" in text  # the accounts file format is described
    assert "``" not in text  # plain text, not reStructuredText


def _run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("module", MODULES)
def test_a_busy_port_gives_one_clear_line_and_exit_2(module: str, busy_port: int) -> None:
    result = _run_module(module, "--port", str(busy_port))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"python -m {module}: port {busy_port} on 127.0.0.1 is already in use;"
        " pick another with --port (0: any free one)"
    ]
    assert "Listening" not in result.stdout


def test_a_non_loopback_host_is_one_line_too() -> None:
    result = _run_module("quatrix_async.testing", "--host", "192.0.2.1", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m quatrix_async.testing: refusing to listen on 192.0.2.1: not a loopback address"
        " (the fake is for local tests)"
    ]
