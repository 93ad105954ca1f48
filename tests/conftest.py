"""Shared fixtures and the suite-wide secret scan.

* every ``@pytest.mark.anyio`` test runs under asyncio and under Trio;
* every secret the SDK wraps is remembered and every log line is kept; at the end of the
  session no log line may contain a secret (see ``tests/secret_scan.py``).
"""

from __future__ import annotations

import pytest

from tests import secret_scan

secret_scan.install()


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's state files (the cross-process TOTP step registry) go to a fresh directory per
    test, never to the user's own state directory."""
    monkeypatch.setenv("MFA_SDKS_STATE_DIR", str(tmp_path_factory.mktemp("state")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = secret_scan.SCANNER.leaks()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaks:
        if reporter is not None:
            reporter.write_line(f"SECRET SCAN: {len(leaks)} secret occurrence(s) in log lines:", red=True)
            for source, fingerprint in leaks[:50]:
                reporter.write_line(f"  logger {source}: secret fingerprint {fingerprint}", red=True)
        session.exitstatus = 1
    elif reporter is not None:
        reporter.write_line(
            f"secret scan: {len(secret_scan.SCANNER.secrets)} secrets, "
            f"{len(secret_scan.SCANNER.lines)} log lines, no leak"
        )
