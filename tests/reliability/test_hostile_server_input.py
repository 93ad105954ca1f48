"""Hostile server input: whatever a server answers, the SDK returns a valid result or raises one
of its own typed errors (an :class:`~mfa_common.errors.MfaSdkError` subclass) — never a
``KeyError``, ``TypeError``, foreign ``ValueError``, ``AttributeError``, ``UnicodeError`` or
``RecursionError``.

Hypothesis draws a short script of answers — any status from 100 to 599; the headers the SDK
reads (``Mfa-Code``, ``X-MFA-Token``, ``X-Account-Lockout``, ``X-Expires-At``, ``Retry-After``,
``ETag``, ``Content-Type``, JWT cookies and headers) with odd values; bodies that are empty,
truncated JSON, the right shape with fields dropped or replaced by wrong types, huge numbers and
unknown enum values, deep nesting, HTML error pages or undecodable bytes — and an
``httpx.MockTransport`` plays it back, cycling, to every operation of one API, run one after
the other in a single ``anyio.run`` (the auth backends' login flows included). Retries are off
and deadlines tiny, so an example is a few milliseconds. Every target group runs 1,000 examples.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metalcloud_async import ListQuery, MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.errors import MfaSdkError
from mfa_common.options import ClientOptions
from mfa_common.recovery_codes import RecoveryCodeStore
from mfa_common.retry import RetryPolicy
from mfa_common.testing import encode_jwt
from mfa_common.totp import WeakSecretWarning
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake
from tests.secret_scan import SCANNER

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "1000"))
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
RECOVERY = ["MLNSPOB2L2ZRO2D5", "35QBUON4JAA4V6KP", "UYH34OY5RNDRRSUS"]
NOW = 1_700_000_000.0
CLOCK = FakeClock(NOW)  # one clock for the module: TOTP step waits are instant
HOSTILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    derandomize=True,
    database=None,
)

# --------------------------------------------------------------------------- well-formed shapes


def _jwt(exp: Any = NOW + 3600) -> str:
    return encode_jwt({"id": "u1", "name": "alice", "exp": exp}, b"k" * 32)


def _quatrix_templates() -> list[Any]:
    fake = QuatrixFake(seed=1)
    user = fake.add_user(email="alice@example.com", password="pw", totp_secret=SECRET, admin=True)
    user_json = fake._user_json(user)
    profile = fake._profile_json(user)
    return [
        {"session_id": "5e551011-aaaa-4bbb-8ccc-0123456789ab"},
        user_json,
        [user_json, user_json],
        profile,
        {"user_used": 3, "user_limit": 50, "acc_used": 0, "acc_limit": 2**40},
        {"qr_code": "iVBORw0KGgo=", "secret": SECRET, "uri": f"otpauth://totp/Q:a?secret={SECRET}"},
        {"status": "success"},
        {"session_ids": "3f1c2a9e-0000-4000-8000-000000000002"},
        {"valid": True},
        {"code": 83, "msg": "Wrong authentication code", "details": {}},
        {"code": 60, "msg": "expired"},
    ]


def _xmfa_templates() -> list[Any]:
    fake = XMfaFake(clock=FakeClock(NOW), jwt_ttl=3600.0)
    fake.add_user("alice", "pw", email="alice@example.com")
    user_auth = fake._user_auth(fake.user("alice"))
    return [
        user_auth,
        {**user_auth, "token": _jwt()},
        {"secret": SECRET, "link": f"otpauth://totp/x:alice?secret={SECRET}", "recovery_codes": RECOVERY},
        {"token": "reset-token-1"},
        {"message": "invalid MFA code", "fields": {"code": "invalid"}},
        {"message": "MFA token is invalid or expired"},
        {"message": "missing or malformed jwt or API token"},
    ]


def _metalcloud_templates() -> list[Any]:
    fake = MetalCloudFake(clock=FakeClock(NOW), jwt_ttl=3600)
    user = fake.add_user("root@example.test", "pw", access_level="root", totp_secret=SECRET)
    user_json = fake.user_json(user)
    info = fake.user_info_json(user)
    return [
        user_json,
        {**user_json, "token": _jwt()},
        {"secret2FA": SECRET, "qrCode": "data:image/png;base64,iVBORw0KGgo="},
        {
            "data": [info, info],
            "meta": {"itemsPerPage": 2, "totalItems": 4, "currentPage": 1, "totalPages": 2, "sortBy": []},
            "links": {"current": "/api/v2/users?page=1", "next": "/api/v2/users?page=2"},
        },
        {"apiKey": "1:" + "a" * 63},
        {"statusCode": 400, "message": ["code must be 6 digits"], "error": "Bad Request"},
        {"statusCode": 401, "message": "2FA required", "error": "Unauthorized"},
        {"message": "logged out"},
    ]


# --------------------------------------------------------------------------- odd values

ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "A" * 5000,
    "🙂",
    "\ud800",  # a lone surrogate (json.dumps escapes it)
    "null",
    "unknown-enum-value",
    "Y",
    "N",
    "2FA",
    "1e999",
    "-1",
    "not.a.jwt",
    "a.b.c",
    _jwt(exp="never"),
    _jwt(exp=1e300),
    _jwt(exp=-5),
    _jwt(exp=[1, 2]),
    "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig",  # payload is not JSON
    "eyJhbGciOiJIUzI1NiJ9.WzEsMl0.sig",  # payload is a JSON list
    "1970-01-01T00:00:00Z",
    "9999-99-99T99:99:99Z",
    "data:image/png;base64,%%%",
]
ODD_NUMBERS = [0, -1, 1, 2**31, 2**63, 10**400, -(10**400), 1.5, 1e308, float("inf"), float("nan"), True]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(ODD_NUMBERS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with fields dropped, retyped or replaced by odd values (recursively)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            choice = draw(st.integers(0, 11))
            if choice == 0:
                continue  # missing field
            if choice == 1:
                out[key] = draw(json_values)  # wrong type
            elif choice == 2:
                out[key] = draw(st.sampled_from(ODD_STRINGS))  # odd string / unknown enum value
            elif choice == 3:
                out[key] = draw(st.sampled_from(ODD_NUMBERS))
            elif choice == 4 and depth < 3:
                out[key] = draw(mutated(item, depth + 1))
            else:
                out[key] = item
        if draw(st.integers(0, 5)) == 0:
            out[draw(st.text(max_size=6))] = draw(json_values)  # unknown field
        return out
    if isinstance(value, list):
        return [draw(mutated(item, depth + 1)) for item in value[: draw(st.integers(0, len(value)))]]
    return value


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>"


def bodies(templates: list[Any]) -> st.SearchStrategy[bytes]:
    template = st.sampled_from(templates)
    shaped = template.flatmap(mutated).map(_dump)
    return st.one_of(
        st.just(b""),
        template.map(_dump),  # well-formed
        shaped,
        shaped,
        st.tuples(shaped, st.floats(0, 1)).map(lambda t: t[0][: int(len(t[0]) * t[1])]),  # truncated
        json_values.map(_dump),  # wrong top-level type
        st.sampled_from([100, 3000, 100_000]).map(lambda d: b"[" * d + b"]" * d),  # deep nesting
        st.sampled_from([100, 3000, 100_000]).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
        st.just(HTML),
        st.binary(max_size=24),  # undecodable bytes
        st.just(b'{"session_id": 1e999, "id": 123456789012345678901234567890123, "revision": -1e400}'),
        st.just(b"\xff\xfe{\x00}\x00"),  # UTF-16 with a BOM
    )


ODD_HEADER_VALUES = [
    "",
    " ",
    "0",
    "-1",
    "1",
    "71",
    "73",
    "61",
    " 71.0 ",
    "nan",
    "inf",
    "-inf",
    "1e999",
    "99999999999999999999999",
    "1700000000",
    "1700000000.5",
    "abc",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Mon, 99 Foo 9999 99:99:99 GMT",
    '"7"',
    'W/"7"',
    '"-1"',
    '"1e400"',
    "token-1",
    "Bearer " + _jwt(),
    "jwt=" + _jwt() + "; Path=/; HttpOnly",
    "jwt=; Max-Age=0",
]
HEADER_NAMES = [
    "Mfa-Code",
    "X-MFA-Token",
    "X-Account-Lockout",
    "X-Expires-At",
    "Retry-After",
    "ETag",
    "Authorization",
    "X-Auth-Token",
    "Set-Cookie",
    "Location",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "application/json; charset=bogus",
    "text/html",
    "text/plain; charset=latin-1",
    "",
    "application/problem+json",
    "multipart/form-data; boundary=",
]
STATUSES = st.one_of(
    st.sampled_from(
        [200, 200, 201, 204, 207, 207, 400, 401, 401, 403, 404, 409, 412, 428, 429, 500, 502, 503]
    ),
    st.integers(100, 599),
)


def headers() -> st.SearchStrategy[list[tuple[str, str]]]:
    pairs = st.tuples(st.sampled_from(HEADER_NAMES), st.sampled_from(ODD_HEADER_VALUES))
    content_type = st.one_of(st.none(), st.sampled_from(CONTENT_TYPES))
    return st.tuples(st.lists(pairs, max_size=5), content_type).map(
        lambda t: t[0] + ([("Content-Type", t[1])] if t[1] is not None else [])
    )


Reply = tuple[int, list[tuple[str, str]], bytes]


def replies(templates: list[Any]) -> st.SearchStrategy[list[Reply]]:
    reply = st.tuples(STATUSES, headers(), bodies(templates))
    return st.lists(reply, min_size=1, max_size=6)


# --------------------------------------------------------------------------- playback


class Script:
    """A MockTransport handler answering with the drawn replies, in a cycle."""

    def __init__(self, script: list[Reply]) -> None:
        self.script = script
        self.sent = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        status, header_list, body = self.script[self.sent % len(self.script)]
        self.sent += 1
        return httpx.Response(status, headers=header_list, content=body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


Operation = Callable[[], Awaitable[Any]]


async def survive(operations: list[Operation]) -> None:
    """Run every operation; only the SDK's typed errors may escape one (anything else fails)."""
    for operation in operations:
        try:
            with anyio.fail_after(5):
                await operation()
        except MfaSdkError:
            pass


async def drain(iterator: Any, limit: int = 5) -> None:
    count = 0
    async for _ in iterator:
        count += 1
        if count >= limit:
            break


@pytest.fixture(autouse=True)
def _quiet_weak_secret() -> Iterator[None]:
    # Fuzzed answers are not secrets the tests planted: keep them out of the suite's scan.
    with warnings.catch_warnings(), SCANNER.pause():
        warnings.simplefilter("ignore", WeakSecretWarning)
        yield


COMMON: dict[str, Any] = {"options": ClientOptions(retry=RetryPolicy(max_retries=0), deadline=2.0)}

# --------------------------------------------------------------------------- Quatrix


@HOSTILE
@given(script=replies(_quatrix_templates()))
def test_quatrix_parsers_and_session_login_survive_any_answer(script: list[Reply]) -> None:
    play = Script(script)

    async def run() -> None:
        async with QuatrixClient(
            "http://127.0.0.1",
            email="alice@example.com",
            password="pw",
            totp_secret=SECRET,
            pin="12345",
            clock=CLOCK,
            transport=play.transport(),
            **COMMON,
        ) as client:
            auth = client.auth
            assert auth is not None
            await survive(
                [
                    client.profile.get,
                    client.users.list,
                    lambda: client.users.metadata("3f1c2a9e-0000-4000-8000-000000000001"),
                    lambda: client.mfa.reset_for_users(["3f1c2a9e-0000-4000-8000-000000000001"]),
                    lambda: client.mfa.set_for_users(
                        ["3f1c2a9e-0000-4000-8000-000000000001"], "PIN", "12345"
                    ),
                    client.profile.generate_2fa,
                    client.profile.info,
                    lambda: client.profile.update(name="Alice"),
                    lambda: client.profile.set_mfa("PIN", "12345"),
                    lambda: client.profile.remove_mfa("2FA"),
                    lambda: client.session.login("alice@example.com", "pw"),
                    lambda: client.session.login_mfa("partial", "2FA", "123456"),
                    lambda: client.session.unblock_captcha("tok", session_id="blocked"),
                    lambda: client.session.unblock_captcha("tok", session_id="blocked", method="GET"),
                    lambda: auth.keepalive_if_idle(min_idle=0),
                    auth.logout,
                ]
            )

    anyio.run(run)


# --------------------------------------------------------------------------- X-MFA


@HOSTILE
@given(script=replies(_xmfa_templates()))
def test_xmfa_parsers_and_token_auth_survive_any_answer(script: list[Reply]) -> None:
    play = Script(script)

    async def run() -> None:
        async with XMfaClient(
            "http://127.0.0.1", clock=CLOCK, transport=play.transport(), **COMMON
        ) as client:
            await survive(
                [
                    lambda: client.session.login("alice", "pw"),
                    lambda: client.session.auth_mfa("mfa-token", "123456"),
                    lambda: client.session.recover("alice", RECOVERY[0]),
                    client.mfa.generate,
                    lambda: client.session.request_reset_mfa("alice"),
                    lambda: client.session.reset_mfa("reset-token", "ABCDE", "FGHIJ"),
                    client.user.get,
                    lambda: client.mfa.enable("123456", SECRET, RECOVERY),
                    lambda: client.mfa.disable(code="123456"),
                    lambda: client.mfa.disable(),
                ]
            )
        totp_auth = XMfaTokenAuth("alice", "pw", totp_secret=SECRET, clock=CLOCK)
        async with XMfaClient(
            "http://127.0.0.1", auth=totp_auth, clock=CLOCK, transport=play.transport(), **COMMON
        ) as client:
            await survive([client.user.get, client.mfa.generate, client.user.get])
        store = RecoveryCodeStore(RECOVERY)
        recovery_auth = XMfaTokenAuth("alice", "pw", recovery_codes=store, clock=CLOCK)
        async with XMfaClient(
            "http://127.0.0.1", auth=recovery_auth, clock=CLOCK, transport=play.transport(), **COMMON
        ) as client:
            await survive([client.user.get, client.user.get])

    anyio.run(run)


# --------------------------------------------------------------------------- MetalCloud


@HOSTILE
@given(script=replies(_metalcloud_templates()))
def test_metalcloud_parsers_and_login_survive_any_answer(script: list[Reply]) -> None:
    play = Script(script)

    async def run() -> None:
        async with MetalCloudClient(
            "http://127.0.0.1", api_key="1:" + "a" * 63, clock=CLOCK, transport=play.transport(), **COMMON
        ) as client:
            await survive(
                [
                    client.user.get,
                    client.user.revision,
                    client.user.generate_2fa,
                    lambda: client.users.list_page(ListQuery(page=1, limit=2)),
                    lambda: drain(client.users.list(page_size=2)),
                    lambda: client.users.get(7),
                    client.user.get_api_key,
                ]
            )
        async with MetalCloudClient(
            "http://127.0.0.1",
            email="root@example.test",
            password="pw",
            totp_secret=SECRET,
            clock=CLOCK,
            transport=play.transport(),
            **COMMON,
        ) as client:
            await survive([client.user.get, client.session.login, client.user.get, client.session.logout])

    anyio.run(run)


# --------------------------------------------------------------------------- two regressions, exactly

DEEP = b"[" * 100_000 + b"]" * 100_000


def _answer(status: int, body: bytes) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body))


@pytest.mark.parametrize("api", ["quatrix", "xmfa", "metalcloud"])
def test_deeply_nested_json_body_is_a_typed_error(api: str) -> None:
    async def call() -> None:
        transport = _answer(200, DEEP)
        if api == "quatrix":
            async with QuatrixClient("http://127.0.0.1", transport=transport, **COMMON) as q:
                await q.users.list()
        elif api == "xmfa":
            async with XMfaClient("http://127.0.0.1", transport=transport, **COMMON) as x:
                await x.mfa.generate()
        else:
            async with MetalCloudClient(
                "http://127.0.0.1", api_key="1:" + "a" * 63, transport=transport, **COMMON
            ) as m:
                await m.user.get()

    async def run() -> None:
        with pytest.raises(MfaSdkError):
            await call()

    anyio.run(run)


@pytest.mark.parametrize("code", [b"1e999", b"NaN", b"-Infinity"])
def test_quatrix_error_body_with_a_non_finite_code_is_a_typed_error(code: bytes) -> None:
    async def run() -> None:
        transport = _answer(400, b'{"code": ' + code + b', "msg": "bad"}')
        async with QuatrixClient("http://127.0.0.1", transport=transport, **COMMON) as client:
            with pytest.raises(MfaSdkError):
                await client.users.list()

    anyio.run(run)
