"""CredentialAuth: single-flight acquisition, compare-and-invalidate, cancellation safety."""

from __future__ import annotations

import anyio
import httpx
import pytest

from mfa_common.auth import CredentialAuth
from mfa_common.client import BaseClient
from mfa_common.requestor import Requestor
from tests.gates import GatedTransport, hold_login_until_waiters


class TokenAuth(CredentialAuth[str]):
    """Logs in by POST /login; the server's current token is the credential."""

    def __init__(self, *, login_delay: float = 0.01, fail: Exception | None = None) -> None:
        super().__init__()
        self.login_delay = login_delay
        self.fail = fail
        self.logins_started = 0

    async def acquire(self, stale: str | None) -> str:
        self.logins_started += 1
        await anyio.sleep(self.login_delay)
        if self.fail is not None:
            raise self.fail
        requestor = self.requestor
        response = await requestor.send(requestor.build("POST", "login"))
        return response.json()["token"]

    def apply(self, request: httpx.Request, credential: str) -> None:
        request.headers["Authorization"] = f"Bearer {credential}"


class Server:
    """A scripted in-memory server: tokens valid until rotated."""

    def __init__(self) -> None:
        self.generation = 0
        self.logins = 0
        self.calls = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            self.logins += 1
            self.generation += 1
            return httpx.Response(200, json={"token": f"tok{self.generation}"})
        self.calls += 1
        if request.headers.get("Authorization") != f"Bearer tok{self.generation}":
            return httpx.Response(401, json={"message": "expired"})
        return httpx.Response(200, json={"ok": True})


def make(server: Server, auth: TokenAuth) -> BaseClient:
    client = BaseClient("http://127.0.0.1:1", auth=auth, transport=httpx.MockTransport(server.handler))
    return client


@pytest.mark.anyio
async def test_thousand_concurrent_calls_cause_one_login() -> None:
    # The login answer is held until the other 999 calls wait on it: proof of concurrency (a
    # backend that is not single-flight never gathers them, and would log in 1,000 times).
    server, auth = Server(), TokenAuth(login_delay=0)
    gate = GatedTransport(httpx.MockTransport(server.handler), lambda r: r.url.path.endswith("/login"))
    client = BaseClient("http://127.0.0.1:1", auth=auth, transport=gate)
    async with client, anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(client.requestor.request, "GET", "data")
        await hold_login_until_waiters(gate, auth, 999)
    assert gate.held == 1
    assert server.logins == 1
    assert auth.acquisitions == 1
    assert server.calls == 1000


@pytest.mark.anyio
async def test_expired_credential_is_replaced_once_and_request_replayed() -> None:
    server, auth = Server(), TokenAuth()
    async with make(server, auth) as client:
        await client.requestor.request("GET", "data")
        server.generation += 1  # the server rotates: the cached token is now stale
        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(client.requestor.request, "GET", "data")
    assert server.logins == 2  # the first login and exactly one re-login


@pytest.mark.anyio
async def test_rejection_clears_only_the_credential_that_failed() -> None:
    auth = TokenAuth()
    auth._credential = "new"
    auth.invalidate("old")
    assert auth.credential == "new"
    auth.invalidate("new")
    assert auth.credential is None


@pytest.mark.anyio
async def test_leader_failure_is_shared_not_repeated() -> None:
    server, auth = Server(), TokenAuth(fail=RuntimeError("bad password"))
    failures = 0
    async with make(server, auth) as client:

        async def call() -> None:
            nonlocal failures
            try:
                await client.requestor.request("GET", "data")
            except RuntimeError:
                failures += 1

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(call)
    assert failures == 100
    assert auth.logins_started == 1  # one failed login, not a hundred feeding a lockout


@pytest.mark.anyio
async def test_cancelled_leader_hands_over_and_leaves_nothing_half_set() -> None:
    server, auth = Server(), TokenAuth(login_delay=0.2)
    async with make(server, auth) as client:
        with anyio.move_on_after(0.05):
            await client.requestor.request("GET", "data")
        assert auth.credential is None and auth._flight is None
        await client.requestor.request("GET", "data")
    assert server.logins == 1
    assert auth.acquisitions == 1


@pytest.mark.anyio
async def test_waiters_survive_a_cancelled_leader() -> None:
    server, auth = Server(), TokenAuth(login_delay=0.1)
    done = 0
    async with make(server, auth) as client:

        async def follower() -> None:
            nonlocal done
            await client.requestor.request("GET", "data")
            done += 1

        async with anyio.create_task_group() as tg:
            leader_scope = anyio.CancelScope()

            async def leader() -> None:
                with leader_scope:
                    await client.requestor.request("GET", "data")

            tg.start_soon(leader)
            await anyio.sleep(0.02)
            for _ in range(10):
                tg.start_soon(follower)
            await anyio.sleep(0.02)
            leader_scope.cancel()
    assert done == 10
    assert server.logins == 1


@pytest.mark.anyio
async def test_credentials_never_sent_to_another_origin() -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/login":
            return httpx.Response(200, json={"token": "tok"})
        seen[request.url.host] = request.headers.get("Authorization")
        return httpx.Response(200, json={})

    auth = TokenAuth()
    login_requestor = Requestor("http://good.test/", transport=httpx.MockTransport(handler))
    auth.bind(login_requestor)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as raw:
        await raw.get("http://good.test/data")
        await raw.get("http://evil.test/data")
    await login_requestor.close()
    assert seen == {"good.test": "Bearer tok", "evil.test": None}


@pytest.mark.anyio
async def test_a_credential_that_cannot_be_a_header_fails_the_login_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"token": "caf\u00e9\u2603"})
        return httpx.Response(200, json={})

    auth = TokenAuth()
    client = BaseClient("http://127.0.0.1:1", auth=auth, transport=httpx.MockTransport(handler))
    from mfa_common.errors import ResponseDecodeError

    async with client:
        for _ in range(2):
            with pytest.raises(ResponseDecodeError):
                await client.requestor.request("GET", "data")
    assert auth.credential is None
    assert auth.logins_started == 2
