"""Login storm: N concurrent calls on a cold client, for each auth backend with an MFA step.

For each backend a fresh process serves the API's shipped fake over a real loopback socket
(``mfa_common.testing.serve``, a uvicorn thread in the same process, so the fake's counters can
be read directly) and builds a cold client with a TOTP second factor. It fires N concurrent
authenticated calls, then reads from the fake how many password logins and MFA steps were
made. **Target: exactly one of each.** The storm's wall time is reported next to one plain
authenticated call on the warm client (median of 20).

Backends (each imported lazily; missing ones are reported as SKIPPED):

* ``quatrix``: ``quatrix_async.QuatrixClient`` (session + 2FA) against ``QuatrixFake``;
  counters ``fake.counts["basic_login"]`` and ``fake.counts["mfa_step"]``.
* ``xmfa``: ``mfa_common.xmfa.client.XMfaClient`` with ``XMfaTokenAuth`` against ``XMfaFake``;
  counters ``fake.counts["login_attempt"]`` and ``fake.counts["auth_attempt"]``.
* ``metalcloud``: ``metalcloud_async.MetalCloudClient`` (login + login-2fa) against
  ``MetalCloudFake``; counters ``fake.counts["password_login"]`` and ``fake.counts["login"]``
  (completed 2FA logins).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks._common import PYTHON, emit, run_json

BACKENDS = ("quatrix", "xmfa", "metalcloud")
PASSWORD = "correct horse battery staple"


class Backend:
    """A fake to serve, a client factory, the call to storm with, and the fake's counters."""

    fake: Any

    def client(self, base_url: str) -> Any:
        raise NotImplementedError

    def call(self, client: Any) -> Callable[[], Awaitable[Any]]:
        raise NotImplementedError

    def counters(self) -> tuple[int, int]:
        """(password logins, MFA steps) as the fake counted them."""
        raise NotImplementedError


class Quatrix(Backend):
    def __init__(self) -> None:
        from quatrix_async.testing import QuatrixFake

        self.fake = QuatrixFake()
        self.user = self.fake.add_user(email="storm@example.com", password=PASSWORD, mfa=True)

    def client(self, base_url: str) -> Any:
        from quatrix_async import QuatrixClient

        return QuatrixClient(
            base_url, email=self.user.email, password=PASSWORD, totp_secret=self.user.totp_secret
        )

    def call(self, client: Any) -> Callable[[], Awaitable[Any]]:
        return client.profile.get  # type: ignore[no-any-return]

    def counters(self) -> tuple[int, int]:
        return int(self.fake.counts["basic_login"]), int(self.fake.counts["mfa_step"])


class XMfa(Backend):
    def __init__(self) -> None:
        from mfa_common.xmfa.testing import XMfaFake

        self.fake = XMfaFake()
        self.user = self.fake.add_user("storm", PASSWORD, email="storm@example.com", mfa=True)

    def client(self, base_url: str) -> Any:
        from mfa_common.xmfa.auth import XMfaTokenAuth
        from mfa_common.xmfa.client import XMfaClient

        auth = XMfaTokenAuth("storm", PASSWORD, totp_secret=self.user.totp_secret)
        return XMfaClient(base_url, auth=auth)

    def call(self, client: Any) -> Callable[[], Awaitable[Any]]:
        return client.user.get  # type: ignore[no-any-return]

    def counters(self) -> tuple[int, int]:
        return int(self.fake.counts["login_attempt"]), int(self.fake.counts["auth_attempt"])


class MetalCloud(Backend):
    def __init__(self) -> None:
        from metalcloud_async.testing import MetalCloudFake
        from mfa_common.testing import generate_base32_secret

        self.fake = MetalCloudFake()
        self.secret = generate_base32_secret(20)
        self.fake.add_user("storm@example.com", PASSWORD, totp_secret=self.secret)

    def client(self, base_url: str) -> Any:
        from metalcloud_async import MetalCloudClient

        return MetalCloudClient(
            base_url, email="storm@example.com", password=PASSWORD, totp_secret=self.secret
        )

    def call(self, client: Any) -> Callable[[], Awaitable[Any]]:
        return client.user.get  # type: ignore[no-any-return]

    def counters(self) -> tuple[int, int]:
        return int(self.fake.counts["password_login"]), int(self.fake.counts["login"])


FACTORIES: dict[str, Callable[[], Backend]] = {"quatrix": Quatrix, "xmfa": XMfa, "metalcloud": MetalCloud}


async def _storm(backend: Backend, base_url: str, calls: int) -> dict[str, Any]:
    import anyio

    ok = 0
    failures: dict[str, int] = {}
    async with backend.client(base_url) as client:
        call = backend.call(client)

        async def one() -> None:
            nonlocal ok
            try:
                await call()
                ok += 1
            except Exception as exc:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1

        with anyio.fail_after(120):
            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for _ in range(calls):
                    tg.start_soon(one)
            storm_wall = time.perf_counter() - started
        logins, mfa = backend.counters()
        plain = []
        with anyio.fail_after(60):
            for _ in range(20):
                t0 = time.perf_counter()
                await call()
                plain.append(time.perf_counter() - t0)
        after = backend.counters()
    plain_s = statistics.median(plain)
    return {
        "calls": calls,
        "ok": ok,
        "failures": failures,
        "logins": logins,
        "mfa_steps": mfa,
        "logins_after_plain_calls": after[0],
        "storm_wall_s": round(storm_wall, 4),
        "plain_call_ms": round(plain_s * 1e3, 3),
        "storm_over_plain": round(storm_wall / plain_s, 1) if plain_s > 0 else None,
    }


def child(name: str, calls: int) -> dict[str, Any]:
    """One backend's storm (runs in its own process)."""
    try:
        backend = FACTORIES[name]()
    except ImportError as exc:
        return {"backend": name, "skipped": f"SKIPPED: {exc.name or exc} not available"}
    import anyio

    from mfa_common.testing import serve

    with serve(backend.fake) as server:
        base_url = str(server.base_url)
        result = anyio.run(_storm, backend, base_url, calls)
    return {"backend": name, **result}


def run(*, calls: int) -> dict[str, Any]:
    """Every backend, each in its own bounded process."""
    results = []
    for name in BACKENDS:
        res = run_json(
            [PYTHON, "-m", "benchmarks.login_storm", "--backend", name, "--calls", str(calls)], timeout=240
        )
        res.setdefault("backend", name)
        results.append(res)
    return {"calls": calls, "backends": results}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per backend: exactly one login and one MFA step, every call answered."""
    out = []
    for b in result.get("backends", []):
        name = f"login_storm_{b['backend']}"
        if "skipped" in b:
            out.append({"name": name, "figure": b["skipped"], "value": None, "passed": None})
            continue
        if "error" in b:
            out.append({"name": name, "figure": "ERROR " + b["error"], "value": None, "passed": False})
            continue
        passed = b["logins"] == 1 and b["mfa_steps"] == 1 and b["ok"] == b["calls"]
        failures = f", failures {b['failures']}" if b["failures"] else ""
        out.append(
            {
                "name": name,
                "figure": (
                    f"{b['logins']} login + {b['mfa_steps']} MFA step for {b['ok']}/{b['calls']} calls "
                    f"(want 1 + 1){failures}; storm {b['storm_wall_s'] * 1e3:.0f} ms = "
                    f"{b['storm_over_plain']}x one plain call ({b['plain_call_ms']:.2f} ms)"
                ),
                "value": b["logins"] + b["mfa_steps"],
                "passed": passed,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=BACKENDS, required=True)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    emit(child(args.backend, args.calls))


if __name__ == "__main__":
    main()
