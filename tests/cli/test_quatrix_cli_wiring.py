"""``quatrix-async`` with the SDK's shared pieces: the cross-process TOTP step registry and API
keys instead of a login."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from mfa_common import replay_state
from mfa_common.clock import FakeClock
from mfa_common.replay_guard import STEP_REGISTRY
from quatrix_async.cli import SPEC
from quatrix_async.testing import QuatrixFake

from .conftest import assert_no_secrets
from .test_quatrix_cli import World

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
    assert world.admin.secret is not None and world.admin.secret not in path.read_text()


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
