"""``quatrix-async`` with the SDK's shared pieces: the cross-process TOTP step registry, API keys
instead of a login, and 2FA enrolment from the server's QR image (drawn from the URI the ``qr``
extra decodes, see test_quatrix_cli.py; without the extra, saved for scanning with ``--save-qr``,
and without either the command names the extra and enables nothing)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mfa_common import qr_decode, replay_state
from mfa_common.clock import FakeClock
from mfa_common.qr_decode import QrDecoderMissingError
from mfa_common.replay_guard import STEP_REGISTRY
from mfa_common.totp import Totp
from quatrix_async.cli import SPEC, build_app
from quatrix_async.testing import QuatrixFake

from .conftest import ScriptedPrompter, assert_no_secrets
from .test_quatrix_cli import USER_PASSWORD, World

STEP = 30


@pytest.fixture
def world(socket_server: Any, clock: FakeClock) -> World:
    swap, url = socket_server
    fake = QuatrixFake(clock=clock, seed=12)
    swap.app = fake
    return World(fake, url, clock)


def _as_if_a_new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget every step this process recorded in memory: only the state directory remains, as
    for the next command run from a shell."""
    STEP_REGISTRY.clear()
    monkeypatch.setattr(replay_state, "_SHARED", {})


def test_two_commands_in_one_step_do_not_reuse_it(
    world: World, base_env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = world.env(base_env)
    first = world.invoke(["profile"], env)
    assert first.exit_code == 0, first.output
    step = int(world.clock.now() // STEP)
    waited = len(world.clock.sleeps)
    _as_if_a_new_process(monkeypatch)
    # Same step by the fake clock: the server would refuse its code again as a replay.
    second = world.invoke(["profile"], env)
    assert second.exit_code == 0, second.output
    assert int(world.clock.now() // STEP) == step + 1  # it waited for the next step
    assert len(world.clock.sleeps) > waited
    assert len(world.session_ids) == 2


def test_the_registry_lives_in_the_state_directory(
    world: World, base_env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state_dir = tmp_path / "steps"
    monkeypatch.setenv(replay_state.STATE_DIR_ENV, str(state_dir))
    result = world.invoke(["profile"], world.env(base_env))
    assert result.exit_code == 0, result.output
    path = state_dir / replay_state.STATE_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert world.admin.totp_secret is not None and world.admin.totp_secret not in path.read_text()


@pytest.mark.skipif(not any(s.name == "api_key" for s in SPEC.settings), reason="no QuatrixClient(api_key=)")
def test_api_key_from_the_environment_needs_no_login(world: World, base_env: dict[str, str | None]) -> None:
    key = world.fake.issue_api_key(world.admin.email)
    env = world.env(base_env, QUATRIX_EMAIL=None, QUATRIX_PASSWORD=None, QUATRIX_TOTP_SECRET=None)
    env["QUATRIX_API_KEY"] = key
    result = world.invoke(["profile", "--json"], env)
    assert result.exit_code == 0, result.output
    assert world.admin.email in result.stdout
    assert world.session_ids == []  # no login at all
    assert_no_secrets(result, key)
    world.fake.revoke_api_key(key)
    refused = world.invoke(["profile"], env)
    assert refused.exit_code == 2 and world.session_ids == []
    assert_no_secrets(refused, key)


def _enrol(world: World, base_env: dict[str, str | None], args: list[str]) -> tuple[Any, Any]:
    user = world.users[1]  # no MFA yet

    def code() -> str:
        return Totp(user.pending_totp_secret or "").code_at(world.clock.now())

    env = world.env(
        base_env, QUATRIX_EMAIL=user.email, QUATRIX_PASSWORD=USER_PASSWORD, QUATRIX_TOTP_SECRET=None
    )
    prompter = ScriptedPrompter({"authenticator app": code})
    result = CliRunner().invoke(
        build_app(clock=world.clock, prompter=prompter), ["mfa", "enrol", *args], env=env
    )
    assert_no_secrets(result, *world.secrets(), user.pending_totp_secret, user.totp_secret)
    return result, user


def _without_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Any:
        raise QrDecoderMissingError()

    monkeypatch.setattr(qr_decode, "_modules", missing)


def test_enrol_without_the_qr_extra_names_it_and_changes_nothing(
    world: World, base_env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_decoder(monkeypatch)
    result, user = _enrol(world, base_env, [])
    assert result.exit_code == 2, result.output
    assert "mfa-sdks[qr]" in result.stderr and "--save-qr" in result.stderr
    assert "▀" not in result.stdout and "▄" not in result.stdout
    assert user.mfa_kind == "none" and world.fake.ledger.count("profile.set-mfa", user.id) == 0


def test_enrol_without_the_qr_extra_saves_the_servers_image(
    world: World, base_env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_decoder(monkeypatch)
    target = tmp_path / "qr.png"
    result, user = _enrol(world, base_env, ["--save-qr", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\x89PNG") and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "scan the image saved to" in result.stderr and "mfa-sdks[qr]" in result.stderr
    assert user.mfa_kind == "2fa" and world.fake.ledger.count("profile.set-mfa", user.id) == 1
