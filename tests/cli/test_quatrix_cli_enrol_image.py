"""``quatrix-async mfa enrol`` from the server's QR image: drawn from the URI decoded with the
``qr`` extra (tests/cli/test_quatrix_cli.py), else saved for scanning with ``--save-qr``, and
without either the command names the extra and enables nothing."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mfa_common import qr_decode
from mfa_common.clock import FakeClock
from mfa_common.qr_decode import QrDecoderMissingError
from mfa_common.totp import Totp
from quatrix_async.cli import build_app
from quatrix_async.testing import QuatrixFake

from .conftest import ScriptedPrompter, assert_no_secrets
from .test_quatrix_cli import USER_PASSWORD, World


@pytest.fixture
def world(socket_server: Any, clock: FakeClock) -> World:
    swap, url = socket_server
    fake = QuatrixFake(clock=clock, seed=13)
    swap.app = fake
    return World(fake, url, clock)


def _enrol(world: World, base_env: dict[str, str | None], args: list[str]) -> tuple[Any, Any]:
    user = world.users[1]  # no MFA yet

    def code() -> str:
        return Totp(user.pending_secret or "").code_at(world.clock.now())

    env = world.env(
        base_env, QUATRIX_EMAIL=user.email, QUATRIX_PASSWORD=USER_PASSWORD, QUATRIX_TOTP_SECRET=None
    )
    prompter = ScriptedPrompter({"authenticator app": code})
    result = CliRunner().invoke(
        build_app(clock=world.clock, prompter=prompter), ["mfa", "enrol", *args], env=env
    )
    assert_no_secrets(result, *world.secrets(), user.pending_secret, user.secret)
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
    assert user.mfa == "none" and world.fake.ledger.count("profile.set-mfa", user.id) == 0


def test_enrol_without_the_qr_extra_saves_the_servers_image(
    world: World, base_env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_decoder(monkeypatch)
    target = tmp_path / "qr.png"
    result, user = _enrol(world, base_env, ["--save-qr", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\x89PNG") and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "scan the image saved to" in result.stderr and "mfa-sdks[qr]" in result.stderr
    assert user.mfa == "2fa" and world.fake.ledger.count("profile.set-mfa", user.id) == 1
