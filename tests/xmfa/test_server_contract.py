"""The ShellHub-style fake answers as the server code does, and the SDK reads those answers.

Fake side, raw HTTP: bodiless 401 / 403 from the authn middleware and BlockAPIKey, the
validation 400 without ``fields`` or login headers, the generic 5xx body, integer ``exp``,
``X-API-Key`` precedence, lockout keyed on the peer address, type-confused bodies refused, the
login order (403 → 423 → 429 → 401 → MFA 401 → 200), the per-endpoint wrong-code statuses, and
enable/disable leaving the JWT alone while ``GET /api/auth/user`` mints a current one.
SDK side: against the fake and against a MockTransport answering each known variant.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mfa_common.auth import jwt_claims
from mfa_common.clock import FakeClock
from mfa_common.errors import (
    AccountAwaitingApprovalError,
    AccountLockedError,
    AuthenticationError,
    MfaCodeRejectedError,
    PermissionDeniedError,
    RecoveryCodeRejectedError,
)
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from mfa_common.totp import Totp
from mfa_common.xmfa import EmailCodeRejectedError, XMfaClient, XMfaTokenAuth
from mfa_common.xmfa.testing import XMfaFake

pytestmark = pytest.mark.anyio

INVALID_ENTITY = {"message": "invalid entity"}
PROTECTED = [
    ("GET", "/api/user/mfa/generate"),
    ("PUT", "/api/user/mfa/enable"),
    ("PUT", "/api/user/mfa/disable"),
    ("PUT", "/api/user/mfa/recovery/disable"),
    ("GET", "/api/auth/user"),
]


def http(fake: XMfaFake, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(fake, client=(peer, 50000)), base_url="http://x.test"
    )


async def login(client: httpx.AsyncClient, username: str, password: str, **kw: Any) -> httpx.Response:
    return await client.post("/api/login", json={"username": username, "password": password}, **kw)


def totp_now(fake: XMfaFake, secret: str, clock: FakeClock) -> str:
    return Totp(secret).code_at(clock.now())


# -- 8: the middleware's bodiless answers, validation, 5xx, exp, precedence, peer lockout ---------


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer ", "Bearer not.a.jwt", "bearer {jwt}", "Basic {jwt}"]
)
async def test_a_protected_route_without_valid_credentials_is_a_bodiless_401(
    fake: XMfaFake, method: str, path: str, authorization: str | None
) -> None:
    fake.add_user("alice", "alice-password")
    headers = {"Authorization": authorization.format(jwt=fake.issue_jwt("alice"))} if authorization else {}
    async with http(fake) as client:
        answer = await client.request(method, path, headers=headers)
    assert answer.status_code == 401
    assert answer.content == b""


async def test_an_expired_or_revoked_jwt_is_a_bodiless_401_and_a_bare_jwt_works(
    fake: XMfaFake, clock: FakeClock
) -> None:
    fake.add_user("alice", "alice-password")
    short = fake.issue_jwt("alice", ttl=60)
    revoked = fake.issue_jwt("alice")
    fake.revoke_jwts("alice")
    good = fake.issue_jwt("alice")
    clock.advance(61)
    async with http(fake) as client:
        for token in (short, revoked):
            answer = await client.get("/api/auth/user", headers={"Authorization": f"Bearer {token}"})
            assert (answer.status_code, answer.content) == (401, b"")
        assert (await client.get("/api/auth/user", headers={"Authorization": good})).status_code == 200


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_x_api_key_is_judged_first_a_live_key_is_a_bodiless_403(
    fake: XMfaFake, method: str, path: str
) -> None:
    fake.add_user("alice", "alice-password")
    key = fake.issue_api_key()
    jwt = {"Authorization": "Bearer " + fake.issue_jwt("alice")}
    async with http(fake) as client:
        blocked = await client.request(method, path, headers={"X-API-Key": key, **jwt})
        unknown = await client.request(method, path, headers={"X-API-Key": "not-a-key", **jwt})
        fake.revoke_api_key(key)
        revoked = await client.request(method, path, headers={"X-API-Key": key, **jwt})
    assert (blocked.status_code, blocked.content) == (403, b"")
    assert (unknown.status_code, unknown.content) == (401, b"")
    assert (revoked.status_code, revoked.content) == (401, b"")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"username": "alice"}',
        b'{"username": "", "password": "x"}',
        b'{"username": 1, "password": "x"}',
        b'{"username": "alice", "password": {}}',
    ],
)
async def test_a_login_that_fails_validation_is_invalid_entity_without_fields_or_login_headers(
    fake: XMfaFake, body: bytes
) -> None:
    fake.add_user("alice", "alice-password")
    async with http(fake) as client:
        answer = await client.post("/api/login", content=body)
    assert answer.status_code == 400
    assert answer.json() == INVALID_ENTITY
    assert "x-mfa-token" not in answer.headers and "x-account-lockout" not in answer.headers
    assert fake.counts["login_attempt"] == 0


async def test_every_5xx_body_is_generic(fake: XMfaFake) -> None:
    async with http(fake) as client:
        answer = await client.post("/api/user/mfa/auth", json={"token": "no-such-token", "code": "123456"})
    assert answer.status_code == 500
    assert answer.json() == {"message": "internal server error"}


async def test_jwt_exp_is_an_integer(clock: FakeClock) -> None:
    fake = XMfaFake(clock=FakeClock(1_700_000_000.25), jwt_ttl=3600.5)
    fake.add_user("alice", "alice-password")
    async with http(fake) as client:
        token = (await login(client, "alice", "alice-password")).json()["token"]
    claims = jwt_claims(token)
    assert claims is not None
    assert type(claims["exp"]) is int and type(claims["iat"]) is int
    assert claims["exp"] == 1_700_000_000 + 3600


async def test_lockout_is_keyed_on_the_peer_address_not_on_headers(fake: XMfaFake) -> None:
    fake.add_user("alice", "alice-password")
    async with http(fake, peer="10.0.0.1") as attacker, http(fake, peer="10.0.0.2") as owner:
        statuses = [(await login(attacker, "alice", "wrong")).status_code for _ in range(3)]
        spoofed = await login(
            attacker,
            "alice",
            "alice-password",
            headers={"X-Real-IP": "10.0.0.9", "X-Forwarded-For": "10.0.0.9"},
        )
        elsewhere = await login(owner, "alice", "alice-password")
    assert statuses == [401, 401, 429]
    assert spoofed.status_code == 429 and spoofed.headers["X-Account-Lockout"] != "0"
    assert elsewhere.status_code == 200
    assert fake.lockout_until("alice", "10.0.0.1") is not None
    assert fake.lockout_until("alice", "10.0.0.2") is None


async def test_a_type_confused_body_is_a_400_never_an_action(fake: XMfaFake, clock: FakeClock) -> None:
    bob = fake.add_user("bob", "bob-password", mfa=True)
    assert bob.totp_secret is not None
    async with http(fake) as client:
        token = (await login(client, "bob", "bob-password")).headers["X-MFA-Token"]
        confused = await client.post("/api/user/mfa/auth", json={"token": token, "code": {}})
        # the token was not spent: the right code still works
        right = await client.post(
            "/api/user/mfa/auth", json={"token": token, "code": totp_now(fake, bob.totp_secret, clock)}
        )
        assert (confused.status_code, confused.json()) == (400, INVALID_ENTITY)
        assert right.status_code == 200
        # an open recovery window must not turn {"code": {}} into a disable
        recovered = await client.post(
            "/api/user/mfa/recover", json={"identifier": "bob", "recovery_code": bob.recovery_codes[0]}
        )
        jwt = {"Authorization": "Bearer " + recovered.json()["token"]}
        for body in (
            {"code": {}},
            {"recovery_code": ["x"]},
            {"main_email_code": 1, "recovery_email_code": 2},
        ):
            answer = await client.put("/api/user/mfa/disable", json=body, headers=jwt)
            assert (answer.status_code, answer.json()) == (400, INVALID_ENTITY)
        enable = await client.put(
            "/api/user/mfa/enable", json={"code": {}, "secret": "x", "recovery_codes": []}, headers=jwt
        )
        assert (enable.status_code, enable.json()) == (400, INVALID_ENTITY)
    assert fake.user("bob").mfa
    assert fake.ledger.entries("disable") == []


# -- 9: the login order --------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["right", "wrong"])
async def test_login_tells_account_state_before_the_password(fake: XMfaFake, password: str) -> None:
    fake.add_user("new", "new-password", status="not-confirmed")
    fake.add_user("waiting", "waiting-password", status="pending")
    async with http(fake) as client:
        unconfirmed = await login(client, "new", "new-password" if password == "right" else "x")
        waiting = await login(client, "waiting", "waiting-password" if password == "right" else "x")
    assert (unconfirmed.status_code, unconfirmed.json()) == (403, {"message": "user not confirmed"})
    assert (waiting.status_code, waiting.json()) == (423, {"message": "user awaiting approval"})


async def test_login_order_lockout_then_password_then_mfa(fake: XMfaFake) -> None:
    fake.add_user("alice", "alice-password")
    fake.add_user("bob", "bob-password", mfa=True)
    fake.add_user("svc", "svc-password", local_auth=False)
    async with http(fake) as client:
        assert (await login(client, "nobody", "x")).json() == {"message": "auth unauthorized"}
        assert (await login(client, "svc", "svc-password")).json() == {"message": "auth unauthorized"}
        wrong = await login(client, "alice", "x")  # no length check: a 1-character password is a 401
        assert (wrong.status_code, wrong.json()) == (401, {"message": "auth unauthorized"})
        mfa = await login(client, "bob", "bob-password")
        assert (mfa.status_code, mfa.content) == (401, b"")
        assert mfa.headers["X-MFA-Token"]
        assert (await login(client, "alice", "alice-password")).status_code == 200
        for _ in range(3):
            await login(client, "alice", "x")
        locked = await login(client, "alice", "alice-password")  # even with the right password
    assert (locked.status_code, locked.content) == (429, b"")
    assert int(locked.headers["X-Account-Lockout"]) > 0


# -- 10: wrong-code statuses per endpoint ---------------------------------------------------------


async def test_wrong_codes_get_each_endpoints_status(fake: XMfaFake, clock: FakeClock) -> None:
    bob = fake.add_user("bob", "bob-password", mfa=True)
    fake.add_user("alice", "alice-password")
    async with http(fake) as client:
        token = (await login(client, "bob", "bob-password")).headers["X-MFA-Token"]
        auth = await client.post("/api/user/mfa/auth", json={"token": token, "code": "000000"})
        recover = await client.post(
            "/api/user/mfa/recover", json={"identifier": "bob", "recovery_code": "WRONGWRONGWRONG2"}
        )
        bob_jwt = {"Authorization": "Bearer " + fake.issue_jwt("bob")}
        disable = await client.put("/api/user/mfa/disable", json={"code": "000000"}, headers=bob_jwt)
        alice_jwt = {"Authorization": "Bearer " + fake.issue_jwt("alice")}
        generated = (await client.get("/api/user/mfa/generate", headers=alice_jwt)).json()
        enable = await client.put(
            "/api/user/mfa/enable",
            json={
                "code": "000000",
                "secret": generated["secret"],
                "recovery_codes": generated["recovery_codes"],
            },
            headers=alice_jwt,
        )
        reset_token = (await client.post("/api/user/mfa/reset", json={"identifier": "bob"})).json()["token"]
        reset = await client.put(
            f"/api/user/mfa/reset/{reset_token}",
            json={"main_email_code": "AAAAA", "recovery_email_code": "BBBBB"},
        )
        unknown = await client.put(
            "/api/user/mfa/reset/no-such-id",
            json={"main_email_code": "AAAAA", "recovery_email_code": "BBBBB"},
        )
    assert [r.status_code for r in (auth, recover, disable, enable, reset, unknown)] == [
        500,
        403,
        403,
        401,
        403,
        404,
    ]
    assert all(
        isinstance(r.json().get("message"), str) for r in (auth, recover, disable, enable, reset, unknown)
    )
    assert bob.mfa and not fake.user("alice").mfa


# -- 11: enable and disable keep the JWT; GET /api/auth/user mints a current one ------------------


async def test_enable_and_disable_return_no_jwt_and_the_old_one_stays_valid(
    fake: XMfaFake, clock: FakeClock
) -> None:
    fake.add_user("alice", "alice-password")
    async with http(fake) as client:
        old = (await login(client, "alice", "alice-password")).json()["token"]
        jwt = {"Authorization": f"Bearer {old}"}
        generated = (await client.get("/api/user/mfa/generate", headers=jwt)).json()
        enabled = await client.put(
            "/api/user/mfa/enable",
            json={
                "code": Totp(generated["secret"]).code_at(clock.now()),
                "secret": generated["secret"],
                "recovery_codes": generated["recovery_codes"],
            },
            headers=jwt,
        )
        assert (enabled.status_code, enabled.content) == (200, b"")
        after_enable = await client.get("/api/auth/user", headers=jwt)
        assert after_enable.status_code == 200
        clock.advance(30)
        disabled = await client.put(
            "/api/user/mfa/disable",
            json={"code": Totp(generated["secret"]).code_at(clock.now())},
            headers=jwt,
        )
        assert (disabled.status_code, disabled.content) == (200, b"")
        after_disable = await client.get("/api/auth/user", headers=jwt)
    assert jwt_claims(old)["mfa"] is False  # type: ignore[index]
    assert jwt_claims(after_enable.json()["token"])["mfa"] is True  # type: ignore[index]
    assert jwt_claims(after_disable.json()["token"])["mfa"] is False  # type: ignore[index]


# -- the SDK ---------------------------------------------------------------------------------------


async def test_the_sdk_types_awaiting_approval_and_not_confirmed(fake: XMfaFake, clock: FakeClock) -> None:
    fake.add_user("waiting", "waiting-password", status="pending")
    fake.add_user("new", "new-password", status="not-confirmed")
    async with XMfaClient("http://127.0.0.1", clock=clock, transport=httpx.ASGITransport(fake)) as client:
        with pytest.raises(AccountAwaitingApprovalError) as waiting:
            await client.session.login("waiting", "waiting-password")
        with pytest.raises(PermissionDeniedError) as new:
            await client.session.login("new", "new-password")
    assert waiting.value.status_code == 423 and waiting.value.server_message == "user awaiting approval"
    assert "waiting-password" not in str(waiting.value)
    assert type(new.value) is PermissionDeniedError
    backend = XMfaTokenAuth("waiting", "waiting-password", clock=clock)
    async with XMfaClient(
        "http://127.0.0.1", clock=clock, transport=httpx.ASGITransport(fake), auth=backend
    ) as client:
        with pytest.raises(AccountAwaitingApprovalError):
            await client.user.get()
    assert fake.counts["login_attempt"] == 3  # never retried


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b'{"message":"user awaiting approval"}', "application/json"), (b"", None), (b"Locked", "text/plain")],
    ids=["json", "empty", "text"],
)
async def test_a_423_login_is_awaiting_approval_in_every_form(body: bytes, content_type: str | None) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            423, content=body, headers={"Content-Type": content_type} if content_type else {}
        )

    async with XMfaClient(
        "https://shellhub.example",
        transport=httpx.MockTransport(handler),
        options=ClientOptions(retry=RetryPolicy(max_retries=0)),
    ) as client:
        with pytest.raises(AccountAwaitingApprovalError):
            await client.session.login("waiting", "pw")


async def test_the_sdk_reads_the_per_endpoint_wrong_code_statuses(fake: XMfaFake, clock: FakeClock) -> None:
    bob = fake.add_user("bob", "bob-password", mfa=True)
    fake.add_user("alice", "alice-password")
    async with XMfaClient("http://127.0.0.1", clock=clock, transport=httpx.ASGITransport(fake)) as client:
        with pytest.raises(RecoveryCodeRejectedError):  # 403
            await client.session.recover("bob", "WRONGWRONGWRONG2")
        await client.session.login("alice", "alice-password")
        generated = await client.mfa.generate()
        with pytest.raises(MfaCodeRejectedError):  # 401 about a code: not a dead JWT
            await client.mfa.enable("000000", generated.secret, generated.recovery_codes)
        assert (await client.user.get()).user == "alice"  # the JWT still works
        token = await client.session.request_reset_mfa("bob")
        assert token is not None
        with pytest.raises(EmailCodeRejectedError):  # 403
            await client.session.reset_mfa(token, "AAAAA", "BBBBB")
    assert bob.mfa
    assert fake.counts["login_attempt"] == 1


@pytest.mark.parametrize(
    ("operation", "status", "body", "expected"),
    [
        ("enable", 401, {"message": "invalid MFA code"}, MfaCodeRejectedError),
        ("enable", 403, {"message": "invalid MFA code"}, MfaCodeRejectedError),
        ("enable", 401, None, AuthenticationError),
        ("recover", 403, {"message": "invalid recovery code"}, RecoveryCodeRejectedError),
        ("recover", 401, {"message": "invalid recovery code"}, RecoveryCodeRejectedError),
        ("disable", 403, {"message": "invalid MFA code"}, MfaCodeRejectedError),
        ("login", 429, None, AccountLockedError),
    ],
)
async def test_each_known_variant_of_a_rejection_is_typed(
    operation: str, status: int, body: dict[str, str] | None, expected: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"X-Account-Lockout": "4102444800"} if status == 429 else {}
        content = json.dumps(body).encode() if body is not None else b""
        if body is not None:
            headers["Content-Type"] = "application/json"
        return httpx.Response(status, content=content, headers=headers)

    async with XMfaClient(
        "https://shellhub.example",
        transport=httpx.MockTransport(handler),
        options=ClientOptions(retry=RetryPolicy(max_retries=0)),
    ) as client:
        with pytest.raises(expected) as info:
            await call(client, operation)
    assert type(info.value) is expected


async def call(client: XMfaClient, operation: str) -> None:
    if operation == "enable":
        await client.mfa.enable("123456", "JBSWY3DPEHPK3PXP", ["CODE1"])
    elif operation == "recover":
        await client.session.recover("bob", "MLNSPOB2L2ZRO2D5")
    elif operation == "disable":
        await client.mfa.disable(code="123456")
    else:
        await client.session.login("alice", "pw")


async def test_current_user_adopts_the_fresh_jwt_with_a_current_mfa_claim(
    fake: XMfaFake, clock: FakeClock
) -> None:
    fake.add_user("alice", "alice-password")
    seen: list[str] = []

    class Recording(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(fake)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.headers.get("Authorization", ""))
            return await self.inner.handle_async_request(request)

    async with XMfaClient("http://127.0.0.1", clock=clock, transport=Recording()) as client:
        old = (await client.session.login("alice", "alice-password")).user
        assert old is not None
        generated = await client.mfa.generate()
        await client.mfa.enable(
            Totp(generated.secret).code_at(clock.now()), generated.secret, generated.recovery_codes
        )
        fresh = await client.user.get()
        await client.user.get()
    assert jwt_claims(old.token)["mfa"] is False  # type: ignore[index]
    assert jwt_claims(fresh.token)["mfa"] is True  # type: ignore[index]
    assert seen[-1] == f"Bearer {fresh.token.reveal()}"
