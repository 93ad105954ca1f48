"""The login engine: the settlement tables of each API (pure), and the driver's promises,
each proven against a client (fresh codes on retry, bounded errors per waiter, no session
stored after close, shielded logout, typed errors only, sync callbacks off the loop, explicit
logins under the deadline)."""

from __future__ import annotations

import threading
import traceback
from typing import Any

import anyio
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.code_providers import CallbackCodeProvider, MfaChallenge
from mfa_common.errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    InvalidCodeError,
    MfaCodeRejectedError,
    MfaTokenExpiredError,
)
from mfa_common.options import ClientOptions
from mfa_common.recovery_codes import RecoveryCodeFormat, RecoveryCodeStore
from mfa_common.testing import generate_base32_secret, serve
from mfa_common.totp import Totp
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import QuatrixClient
from quatrix_async.auth import QuatrixSessionAuth
from quatrix_async.testing import QuatrixFake
from tests.gates import EVENT_GUARD, GatedTransport, SilentTransport, hold_login_until_waiters, wait_until

# --------------------------------------------------------------------------- a scripted Quatrix

pytestmark = pytest.mark.anyio
BASE = "http://127.0.0.1"


class QuatrixScript:
    """A Quatrix login on a MockTransport: 207 + 71, then the MFA step answers ``mfa_answers``
    in turn (the last one repeats); records every code and every logout."""

    def __init__(self, mfa_answers: list[httpx.Response], basic: httpx.Response | None = None) -> None:
        self.mfa_answers = mfa_answers
        self.basic = basic
        self.codes: list[str] = []
        self.logouts: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/session/login") and request.method == "GET":
            if self.basic is not None:
                return self.basic
            return httpx.Response(207, json={"session_id": "partial"}, headers={"Mfa-Code": "71"})
        if path.endswith("/session/login"):
            import json

            self.codes.append(json.loads(request.content)["code"])
            answer = self.mfa_answers[min(len(self.codes), len(self.mfa_answers)) - 1]
            return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        if path.endswith("/session/logout"):
            self.logouts.append(request.headers.get("X-Auth-Token", ""))
            return httpx.Response(200, json={})
        return httpx.Response(404)


async def test_a_refused_mfa_step_is_retried_with_a_fresh_code_never_the_same() -> None:
    """Defect 6: a 429 + Retry-After on the MFA step must not resend the code of a step that
    has passed meanwhile; the driver sends a freshly issued one."""
    clock = FakeClock(1_700_000_000.0)
    secret = generate_base32_secret(20)
    script = QuatrixScript(
        [
            httpx.Response(429, headers={"Retry-After": "31"}, json={"code": -1, "msg": "slow down"}),
            httpx.Response(200, json={"session_id": "full"}),
        ]
    )
    async with QuatrixClient(
        BASE,
        email="u@example.com",
        password="pw",
        totp_secret=secret,
        clock=clock,
        transport=httpx.MockTransport(script.handler),
    ) as client:
        with anyio.fail_after(EVENT_GUARD):
            await client.login()
        auth = client.auth
        assert auth is not None and auth.credential is not None
        assert auth.credential.session_id.reveal() == "full"
    assert len(script.codes) == 2
    first, second = script.codes
    assert first != second
    # The second code is the one of a later step, issued after the wait the server asked for.
    assert second == Totp(secret).code_at(clock.now())


async def test_each_waiter_of_a_failed_login_gets_its_own_bounded_error() -> None:
    """Defect 9: 200 waiters of one failed login each raise their own error object, whose
    traceback is that of its own task only."""
    script = QuatrixScript(
        [], basic=httpx.Response(401, json={"code": 14, "msg": "Wrong e-mail or password"})
    )
    gate = GatedTransport(
        httpx.MockTransport(script.handler), lambda r: r.url.path.endswith("/session/login")
    )
    errors: list[BaseException] = []
    async with QuatrixClient(BASE, email="u@example.com", password="pw", transport=gate) as client:
        auth = client.auth
        assert auth is not None

        async def call() -> None:
            try:
                await client.login()
            except AuthenticationError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            for _ in range(200):
                group.start_soon(call)
            await hold_login_until_waiters(gate, auth, 199)
    assert len(errors) == 200
    assert len({id(error) for error in errors}) == 200
    depths = [len(traceback.extract_tb(error.__traceback__)) for error in errors]
    assert max(depths) < 40, depths[:5]
    assert all(type(error) is type(errors[0]) and str(error) == str(errors[0]) for error in errors)


async def test_a_login_finishing_after_close_is_logged_out_not_stored() -> None:
    """Defect 18: the answer of a login arrives while the client closes: the session is logged
    out at once and never stored."""
    script = QuatrixScript([], basic=httpx.Response(200, json={"session_id": "late-session"}))
    gate = GatedTransport(
        httpx.MockTransport(script.handler),
        lambda r: r.url.path.endswith("/session/login"),
    )
    client = QuatrixClient(BASE, email="u@example.com", password="pw", transport=gate)
    auth = client.auth
    assert auth is not None
    outcome: list[BaseException] = []

    async def login() -> None:
        try:
            await client.login()
        except ClientClosedError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(login)
        await wait_until(lambda: gate.held == 1)
        group.start_soon(client.aclose)
        await wait_until(lambda: auth._epoch > 0)  # aclose() began and waits on the login
        gate.open()
    assert client.closed
    assert auth.credential is None
    assert script.logouts == ["late-session"]
    assert len(outcome) == 1


async def test_standalone_session_auth_raises_only_typed_errors_when_the_server_is_down() -> None:
    """Defect 11: a standalone backend's own requestor (with timeouts) turns transport failures
    into typed errors; closing with the server down is best effort and raises nothing raw."""
    with anyio.fail_after(EVENT_GUARD):
        port = await _closed_port()
        auth = QuatrixSessionAuth("u@example.com", "pw", base_url=f"http://127.0.0.1:{port}/api/1.0")
        with pytest.raises(APIError):
            await auth.requestor.send(auth.requestor.build("GET", "session/keepalive"))
        with pytest.raises(APIError):
            await auth.get_credential()
        auth.adopt_session("a-session")
        await auth.aclose()  # logs out: the server is down, nothing raw leaves
        assert auth.credential is None
        with pytest.raises(ClientClosedError):  # a closed backend starts no new login
            await auth.get_credential()


async def _closed_port() -> int:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.aclose()
    return port


# --------------------------------------------------------------------------- code callbacks


async def test_a_blocking_code_callback_runs_off_the_event_loop() -> None:
    """Defect 16: while a plain (non-async) callback blocks, like a terminal prompt, another task
    of the loop makes progress: here it is that task which lets the callback finish."""
    progressed = threading.Event()

    def prompt(challenge: MfaChallenge) -> str:
        # Blocks its thread until the loop's other task ran; if it ran on the loop, it never would.
        return "123456" if progressed.wait(EVENT_GUARD) else "000000"

    async def other_task() -> None:
        await anyio.sleep(0)
        progressed.set()

    provider = CallbackCodeProvider(prompt)
    async with anyio.create_task_group() as group:
        group.start_soon(other_task)
        issued = await provider.issue(MfaChallenge(kind="totp"))
    assert issued.value.reveal() == "123456"


async def test_a_callback_answers_a_pin_challenge_with_a_pin() -> None:
    """Issue 14: the digits follow the challenge: a 5-digit PIN is fine for a PIN challenge,
    a TOTP challenge still needs 6 digits."""
    provider = CallbackCodeProvider(lambda challenge: "40516")
    assert (await provider.issue(MfaChallenge(kind="pin"))).value.reveal() == "40516"
    with pytest.raises(InvalidCodeError):
        await provider.issue(MfaChallenge(kind="totp"))


# --------------------------------------------------------------------------- deadlines


async def test_explicit_quatrix_login_against_a_silent_server_ends_in_a_typed_timeout() -> None:
    """Defect 1 (login side): ``login()`` runs under the client's deadline."""
    silent = SilentTransport()
    async with QuatrixClient(
        BASE,
        email="u@example.com",
        password="pw",
        transport=silent,
        options=ClientOptions(timeout=1, deadline=0.2),
    ) as client:
        with anyio.fail_after(EVENT_GUARD), pytest.raises(APITimeoutError):
            await client.login()
    assert len(silent.requests) == 1


async def test_explicit_metalcloud_login_against_a_silent_server_ends_in_a_typed_timeout() -> None:
    silent = SilentTransport()
    async with MetalCloudClient(
        "http://metalcloud.localhost",
        email="u@example.com",
        password="pw",
        transport=silent,
        options=ClientOptions(deadline=0.2),
    ) as client:
        with anyio.fail_after(EVENT_GUARD), pytest.raises(APITimeoutError):
            await client.session.login()
        with anyio.fail_after(EVENT_GUARD), pytest.raises(APITimeoutError):
            await client.session.login("u@example.com", "pw")
    assert len(silent.requests) == 2


# --------------------------------------------------------------------------- logout on close


async def test_leaving_async_with_from_a_cancelled_scope_logs_out_every_api() -> None:
    """Defect 8: one rule in the driver, shielded and bounded, for Quatrix and MetalCloud."""
    quatrix = QuatrixFake(seed=None)
    quatrix.add_user(email="plain@example.com", password="correct-horse")
    metal = MetalCloudFake(jwt_ttl=3600)
    metal.add_user("root@example.test", "root-password", access_level="root", display_name="Root")

    with serve(quatrix) as q_server, serve(metal) as m_server:  # real sockets: real awaits
        with anyio.CancelScope() as scope:
            async with QuatrixClient(
                q_server.base_url, email="plain@example.com", password="correct-horse"
            ) as q:
                await q.profile.get()
                scope.cancel()
                await anyio.sleep_forever()
        with anyio.CancelScope() as scope:
            async with MetalCloudClient(
                m_server.base_url, email="root@example.test", password="root-password"
            ) as m:
                await m.user.get()
                scope.cancel()
                await anyio.sleep_forever()
    assert quatrix.counts["logout"] == 1
    assert metal.counts["logout"] == 1


# --------------------------------------------------------------------------- X-MFA


async def test_recovery_codes_are_never_spent_where_a_totp_source_exists(caplog: Any) -> None:
    """Defect 15: with a TOTP secret and recovery codes, logins use TOTP only; a login that is
    about to spend a recovery code (no TOTP source) says so in a warning."""
    clock = FakeClock(1_700_000_000.0)
    fake = XMfaFake(clock=clock, jwt_ttl=3600.0)
    user = fake.add_user("bob", "bob-password", mfa=True)
    total = len(user.recovery_codes)
    store = RecoveryCodeStore(user.recovery_codes, format=RecoveryCodeFormat.SHELLHUB)
    auth = XMfaTokenAuth(
        "bob", "bob-password", totp_secret=user.totp_secret, recovery_codes=store, clock=clock
    )
    async with XMfaClient(BASE, auth=auth, clock=clock, transport=httpx.ASGITransport(fake)) as client:
        await client.user.get()
        fake.revoke_jwts("bob")  # a renewal cannot help: the next call logs in again
        await client.user.get()
    assert auth.acquisitions == 2
    assert fake.counts["exchange"] == 2
    assert store.remaining == total
    assert not [r for r in caplog.records if "recovery code" in r.getMessage()]

    last_resort = XMfaTokenAuth("bob", "bob-password", recovery_codes=store, clock=clock)
    async with XMfaClient(BASE, auth=last_resort, clock=clock, transport=httpx.ASGITransport(fake)) as client:
        await client.user.get()
    assert store.remaining == total - 1
    warnings = [r for r in caplog.records if "recovery code" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"


async def test_xmfa_expired_token_is_told_from_a_wrong_code_by_time() -> None:
    """X-MFA 10: a refused /mfa/auth (401, 403 or 500) more than 30 minutes after the MFA token
    came is an expired token; before that, a rejected code; whatever the server's wording."""
    clock = FakeClock(1_700_000_000.0)

    exchanges: list[int] = []

    def server(status: int, late: bool) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/api/login"):
                return httpx.Response(401, headers={"X-MFA-Token": "0b6f7c1e-3c2a-4d0e-9f51-7a2d8e4c9b13"})
            exchanges.append(status)
            if late:  # the answer comes after the token's 30 minutes
                clock.advance(31 * 60)
            return httpx.Response(status, json={"message": "nope"})

        return httpx.MockTransport(handler)

    for status in (401, 403, 500):
        for late, expected in ((False, MfaCodeRejectedError), (True, MfaTokenExpiredError)):
            provider = CallbackCodeProvider(lambda challenge: "123456")
            auth = XMfaTokenAuth("bob", "pw", code_provider=provider, clock=clock)
            async with XMfaClient(BASE, auth=auth, clock=clock, transport=server(status, late)) as client:
                with pytest.raises(expected):
                    await client.user.get()
    # Never a server fault to retry: one exchange per login, 500 included.
    assert exchanges == [401, 401, 403, 403, 500, 500]


# --------------------------------------------------------------------------- API-key rotation


class PlainUserAnswer(httpx.AsyncBaseTransport):
    """The spec's answer to regenerate-api-key: a plain ``User``, without the new key."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/regenerate-api-key"):
            return response
        import json

        body = json.loads(await response.aread())
        body.pop("apiKey", None)
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length",)}
        return httpx.Response(response.status_code, headers=headers, json=body)


async def test_regenerate_api_key_without_the_key_in_the_answer_never_waits_on_itself() -> None:
    """Defect 5: with the spec's plain ``User`` answer the key is re-read with
    ``GET /user/api-key``: on a JWT session that works; an API-key client, whose old key died,
    gets a typed error at once (``deadline=None``: a wait would be forever)."""
    metal = MetalCloudFake(jwt_ttl=3600)
    metal.add_user("root@example.test", "root-password", access_level="root", display_name="Root")
    transport = PlainUserAnswer(httpx.ASGITransport(metal))
    base = "http://metalcloud.localhost"
    async with MetalCloudClient(
        base,
        api_key=metal.user("root@example.test").api_key,
        transport=transport,
        options=ClientOptions(deadline=None),
    ) as client:
        with anyio.fail_after(EVENT_GUARD), pytest.raises(AuthenticationError) as info:
            await client.user.regenerate_api_key()
        assert "did not carry it" in str(info.value)
    async with MetalCloudClient(
        base,
        email="root@example.test",
        password="root-password",
        transport=transport,
        options=ClientOptions(deadline=None),
    ) as client:
        with anyio.fail_after(EVENT_GUARD):
            rotated = await client.user.regenerate_api_key()
    assert rotated.api_key.reveal() == metal.user("root@example.test").api_key
