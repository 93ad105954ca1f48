"""One request path: every request of a client, login steps and logouts included, is built and
sent by the same requestor, so each promise of that path holds for all of them.

Each test here stood for a defect of a client whose login steps, key checks or close went
around the common path: headers lost on login steps, an unchecked API key, an unreadable or
cut-off write reported as a plain failure, a login started during ``aclose()``, an aiohttp
send with no write timeout, a password in the base URL shown in reprs and messages, and a
``Retry-After`` slept into the deadline.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common import errors
from mfa_common.clock import FakeClock
from mfa_common.options import ClientOptions
from mfa_common.testing import generate_base32_secret
from mfa_common.xmfa import XMfaClient
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake
from tests.gates import EVENT_GUARD, GatedTransport, SilentTransport, wait_until
from tests.reliability._raw_server import Stats, raw_server, read_head

pytestmark = pytest.mark.anyio

# A secret of this file's own: the in-process step registry remembers the steps it used, and a
# test of another file at the same fake time must not make this one wait for a fresh step.
SECRET = generate_base32_secret(20)
START = 1_700_000_000.0
USER_AGENT_PREFIX = "mfa-sdks/"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes every request on, keeping a copy of its method, path and headers."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str, httpx.Headers]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path, httpx.Headers(request.headers)))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _assert_every_request_carries_the_client_headers(
    seen: list[tuple[str, str, httpx.Headers]], expected_paths: set[str]
) -> None:
    assert {path for _, path, _ in seen} >= expected_paths, seen
    for method, path, headers in seen:
        where = f"{method} {path}"
        assert headers.get("user-agent", "").startswith(USER_AGENT_PREFIX), where
        assert headers.get("accept") is not None, where
        assert headers.get("x-tenant") == "blue", where


# --- 1: login steps and logouts carry the client's headers -----------------------------------


async def test_quatrix_login_steps_and_logout_carry_the_client_headers() -> None:
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock)
    fake.add_user("ops@example.com", "ops-password", totp_secret=SECRET, admin=True)
    recorder = RecordingTransport(httpx.ASGITransport(app=fake))
    async with QuatrixClient(
        "http://127.0.0.1",
        email="ops@example.com",
        password="ops-password",
        totp_secret=SECRET,
        clock=clock,
        transport=recorder,
        options=ClientOptions(headers={"X-Tenant": "blue"}),
    ) as client:
        await client.profile.get()
    _assert_every_request_carries_the_client_headers(
        recorder.seen,
        {"/api/1.0/session/login", "/api/1.0/profile", "/api/1.0/session/logout"},
    )
    assert [m for m, p, _ in recorder.seen if p == "/api/1.0/session/login"] == ["GET", "POST"]


async def test_metalcloud_login_steps_and_logout_carry_the_client_headers() -> None:
    clock = FakeClock(START)
    fake = MetalCloudFake(clock=clock)
    fake.add_user(email="ops@example.com", password="ops-password", totp_secret=SECRET)
    recorder = RecordingTransport(httpx.ASGITransport(app=fake))
    async with MetalCloudClient(
        "http://127.0.0.1",
        email="ops@example.com",
        password="ops-password",
        totp_secret=SECRET,
        clock=clock,
        transport=recorder,
        options=ClientOptions(headers={"X-Tenant": "blue"}),
    ) as client:
        await client.user.get()
    _assert_every_request_carries_the_client_headers(
        recorder.seen, {"/api/v2/login", "/api/v2/login-2fa", "/api/v2/user", "/api/v2/logout"}
    )


async def test_xmfa_login_steps_carry_the_client_headers() -> None:
    clock = FakeClock(START)
    fake = XMfaFake(clock=clock)
    fake.add_user("bob", "bob-password", totp_secret=SECRET)
    recorder = RecordingTransport(httpx.ASGITransport(app=fake))
    async with XMfaClient(
        "http://127.0.0.1",
        username="bob",
        password="bob-password",
        totp_secret=SECRET,
        clock=clock,
        transport=recorder,
        options=ClientOptions(headers={"X-Tenant": "blue"}),
    ) as client:
        await client.user.get()
    _assert_every_request_carries_the_client_headers(
        recorder.seen, {"/api/login", "/api/user/mfa/auth", "/api/auth/user"}
    )


# --- 2: every client checks an API key before using it ----------------------------------------

BAD_KEYS = ["sk-bad key\n", "", "  ", " sk-lead", "sk-trail ", "sk-n\x00ul", "sk-ключ", "sk-x\r\nX-Evil: 1"]


@pytest.mark.parametrize("make", [QuatrixClient, MetalCloudClient], ids=["quatrix", "metalcloud"])
@pytest.mark.parametrize("key", BAD_KEYS, ids=range(len(BAD_KEYS)))
def test_an_api_key_no_header_can_carry_is_refused_at_once(make: Any, key: str) -> None:
    with pytest.raises(errors.InvalidInputError) as caught:
        make("https://api.example.com", api_key=key)
    if key.strip():
        assert key.strip()[:5] not in str(caught.value)


# --- 3: a sent write whose answer head is too long is an unknown outcome ------------------------


def _long_header_answer(conn: socket.socket, stats: Stats) -> None:
    """Answer every request 200 with a 100 KB header line (after reading it whole)."""
    while not stats.stop.is_set():
        if not read_head(conn):
            return
        stats.count_request()
        big = "a" * 100_000
        conn.sendall(
            f"HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\n\r\n{}".encode()
        )


async def test_a_write_answered_with_an_oversized_head_is_an_unknown_outcome() -> None:
    with raw_server(_long_header_answer) as (url, stats):
        async with MetalCloudClient(url, api_key="key-1") as client:
            with anyio.fail_after(EVENT_GUARD), pytest.raises(errors.OutcomeUnknownError) as caught:
                await client.requestor.request("POST", "/api/v2/users", json={"email": "a@example.com"})
            with anyio.fail_after(EVENT_GUARD), pytest.raises(errors.ResponseTooLargeError):
                await client.requestor.request("GET", "/api/v2/users")
    assert "too large" in str(caught.value) or "exceed" in str(caught.value)
    assert stats.requests == 2  # neither was sent twice


# --- 4: a call during aclose() is refused and leaves no session behind --------------------------


async def test_a_call_during_aclose_is_refused_and_no_session_outlives_the_close() -> None:
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock)
    fake.add_user("ops@example.com", "ops-password", admin=True)
    gate = GatedTransport(
        httpx.ASGITransport(app=fake), lambda request: request.url.path.endswith("/session/logout")
    )
    client = QuatrixClient(
        "http://127.0.0.1", email="ops@example.com", password="ops-password", clock=clock, transport=gate
    )
    await client.profile.get()
    assert fake.logins_of("ops@example.com") == 1
    outcome: list[BaseException] = []

    async def call_during_close() -> None:
        try:
            await client.profile.get()
        except BaseException as exc:
            outcome.append(exc)

    with anyio.fail_after(EVENT_GUARD):
        async with anyio.create_task_group() as group:
            group.start_soon(client.aclose)
            await wait_until(lambda: gate.held == 1)  # the logout is on its way
            await call_during_close()
            gate.open()
    assert len(outcome) == 1 and isinstance(outcome[0], errors.ClientClosedError), outcome
    assert fake.logins_of("ops@example.com") == 1
    assert fake.sessions_of("ops@example.com", state=None) == []


# --- 6: the aiohttp transport bounds the write phase ----------------------------------------------


def _never_reads(conn: socket.socket, stats: Stats) -> None:
    """Accept, never read a byte, never answer."""
    stats.count_request()
    stats.stop.wait(60)


async def test_a_server_that_never_reads_the_request_ends_in_a_write_timeout() -> None:
    # A body far larger than the loopback socket buffers: the send blocks until the write
    # timeout ends it. No deadline: the per-phase timeout alone must end the call.
    blob = "x" * (32 * 1024 * 1024)
    with raw_server(_never_reads) as (url, _):
        async with MetalCloudClient(
            url, api_key="key-1", options=ClientOptions(timeout=httpx.Timeout(5, write=0.5), deadline=None)
        ) as client:
            with anyio.fail_after(EVENT_GUARD), pytest.raises(errors.OutcomeUnknownTimeoutError):
                await client.requestor.request("POST", "/api/v2/users", json={"blob": blob})


# --- 7: credentials in the base URL are refused, never shown -------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda url: QuatrixClient(url, api_key="key-1"),
        lambda url: MetalCloudClient(url, api_key="key-1"),
        lambda url: XMfaClient(url),
    ],
    ids=["quatrix", "metalcloud", "xmfa"],
)
@pytest.mark.parametrize("url", ["https://svc:hunter2-pw@api.example.com", "https://svc@api.example.com/x"])
def test_credentials_in_the_base_url_are_refused_without_showing_them(make: Any, url: str) -> None:
    with pytest.raises(errors.InvalidInputError) as caught:
        make(url)
    assert "hunter2-pw" not in str(caught.value)
    assert "svc" not in str(caught.value)


# --- 8: a sent write cut off by the deadline is an unknown outcome --------------------------------


async def test_a_write_cut_off_by_the_deadline_is_an_unknown_outcome() -> None:
    silent = SilentTransport()
    async with MetalCloudClient(
        "http://127.0.0.1", api_key="key-1", transport=silent, options=ClientOptions(deadline=0.2)
    ) as client:
        with anyio.fail_after(EVENT_GUARD), pytest.raises(errors.OutcomeUnknownTimeoutError) as caught:
            await client.requestor.request("POST", "/api/v2/users", json={"email": "a@example.com"})
        assert "deadline" in str(caught.value)
        with anyio.fail_after(EVENT_GUARD), pytest.raises(errors.APITimeoutError) as read:
            await client.requestor.request("GET", "/api/v2/users")
    assert not isinstance(read.value, errors.OutcomeUnknownError)
    assert len(silent.requests) == 2


async def test_a_write_that_never_reached_the_transport_is_a_plain_timeout() -> None:
    # The deadline ends the call during its login: the write itself was never sent.
    silent = SilentTransport()
    async with MetalCloudClient(
        "http://127.0.0.1",
        email="a@example.com",
        password="pw",
        transport=silent,
        options=ClientOptions(deadline=0.2),
    ) as client:
        with anyio.fail_after(EVENT_GUARD), pytest.raises(errors.APITimeoutError) as caught:
            await client.requestor.request("POST", "/api/v2/users", json={"email": "a@example.com"})
    assert not isinstance(caught.value, errors.OutcomeUnknownError)
    assert [r.url.path for r in silent.requests] == ["/api/v2/login"]


# --- 9: a Retry-After past the deadline ends the call with the server's answer -----------------------


async def test_a_retry_after_past_the_deadline_raises_the_rate_limit_at_once() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, headers={"Retry-After": "30"}, json={"message": "slow down"})

    async with MetalCloudClient(
        "http://127.0.0.1",
        api_key="key-1",
        transport=httpx.MockTransport(handler),
        options=ClientOptions(deadline=2),
    ) as client:
        with anyio.fail_after(EVENT_GUARD), pytest.raises(errors.RateLimitError) as caught:
            await client.user.get()
    assert caught.value.retry_after == 30
    assert calls == 1
