"""The Quatrix login as the real servers do it (issue points Q2 and Q4), on both sides:

* the MFA step: a TOTP code plain, a PIN as base64 of its UTF-8 bytes (``pin_encoding="plain"``
  for servers that take it plain), a PIN of the wrong length refused before sending; the fake
  accepts the flat and the legacy body shapes, and only the documented one in strict mode;
* the session id from the body, else from an ``X-Auth-Token`` response header; an ``Mfa-Code``
  other than 71 / 73 is a typed challenge carrying the code and the partial session.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from mfa_common.errors import InvalidCodeError, MfaCodeRejectedError
from mfa_common.testing import generate_base32_secret
from quatrix_async import QuatrixClient
from quatrix_async.errors import UnknownSecondFactorError
from quatrix_async.testing import QuatrixFake

PASSWORD = "correct-horse"
BASE = "http://127.0.0.1"
pytestmark = pytest.mark.anyio


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("strict", [False, True])
async def test_a_pin_travels_as_base64_by_default(strict: bool) -> None:
    fake = QuatrixFake(seed=None, strict_mfa_body=strict)
    fake.add_user(email="pin@example.com", password=PASSWORD, pin="40516")
    async with QuatrixClient(
        BASE, email="pin@example.com", password=PASSWORD, pin="40516", transport=httpx.ASGITransport(fake)
    ) as client:
        assert (await client.profile.get()).email == "pin@example.com"
    assert fake.counts["mfa_step"] == 1


async def test_a_plain_pin_on_request_and_the_strict_fake_refuses_it() -> None:
    lenient = QuatrixFake(seed=None)
    lenient.add_user(email="pin@example.com", password=PASSWORD, pin="40516")
    async with QuatrixClient(
        BASE,
        email="pin@example.com",
        password=PASSWORD,
        pin="40516",
        pin_encoding="plain",
        transport=httpx.ASGITransport(lenient),
    ) as client:
        await client.profile.get()
    strict = QuatrixFake(seed=None, strict_mfa_body=True)
    strict.add_user(email="pin@example.com", password=PASSWORD, pin="40516")
    async with QuatrixClient(
        BASE,
        email="pin@example.com",
        password=PASSWORD,
        pin="40516",
        pin_encoding="plain",
        transport=httpx.ASGITransport(strict),
    ) as client:
        with pytest.raises(MfaCodeRejectedError) as info:
            await client.profile.get()
    assert info.value.error_code == 84


@pytest.mark.parametrize("pin", ["4051", "405161"])
async def test_a_pin_of_the_wrong_length_is_refused_before_sending(pin: str) -> None:
    fake = QuatrixFake(seed=None)
    fake.add_user(email="pin@example.com", password=PASSWORD, pin="40516")
    async with QuatrixClient(
        BASE, email="pin@example.com", password=PASSWORD, pin=pin, transport=httpx.ASGITransport(fake)
    ) as client:
        with pytest.raises(InvalidCodeError):
            await client.profile.get()
        with pytest.raises(InvalidCodeError):
            await client.session.login_mfa("partial", "PIN", pin)
    assert fake.counts["mfa_step"] == 0


@pytest.mark.parametrize(
    ("body", "lenient_ok", "strict_ok"),
    [
        ({"auth_type": "PIN", "code": b64("40516")}, True, True),
        ({"auth_type": "PIN", "code": "40516"}, True, False),
        ({"auth_type": "PIN", "value": {"pin": b64("40516")}}, True, False),
        ({"auth_type": "PIN", "value": {"code": "40516"}}, True, False),
    ],
)
async def test_the_fake_accepts_the_body_shapes(
    body: dict[str, object], lenient_ok: bool, strict_ok: bool
) -> None:
    for strict, ok in ((False, lenient_ok), (True, strict_ok)):
        fake = QuatrixFake(seed=None, strict_mfa_body=strict)
        fake.add_user(email="pin@example.com", password=PASSWORD, pin="40516")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(fake), base_url=BASE) as raw:
            first = await raw.get("/api/1.0/session/login", auth=("pin@example.com", PASSWORD))
            assert first.status_code == 207
            partial = first.json()["session_id"]
            answer = await raw.post(
                "/api/1.0/session/login", content=json.dumps(body), headers={"X-Auth-Token": partial}
            )
        assert (answer.status_code == 200) is ok, (strict, answer.status_code)
        assert answer.status_code < 500


def scripted(first: httpx.Response, second: httpx.Response | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/session/login"):
            return first
        if request.method == "POST" and request.url.path.endswith("/session/login") and second is not None:
            return second
        return httpx.Response(200, json={"id": "u1", "email": "u@example.com"})

    return httpx.MockTransport(handler)


async def test_the_session_id_falls_back_to_an_x_auth_token_header() -> None:
    transport = scripted(
        httpx.Response(200, json={"account_id": None}, headers={"X-Auth-Token": "from-header"})
    )
    async with QuatrixClient(BASE, email="u@example.com", password="pw", transport=transport) as client:
        await client.login()
        auth = client.auth
        assert auth is not None and auth.credential is not None
        assert auth.credential.session_id.reveal() == "from-header"
        step = await client.session.login("u@example.com", "pw")
        assert step.kind == "logged_in" and step.session_id is not None
        assert step.session_id.reveal() == "from-header"


async def test_a_207_session_id_in_the_header_and_the_mfa_answer_body_wins() -> None:
    transport = scripted(
        httpx.Response(207, headers={"Mfa-Code": "73", "X-Auth-Token": "partial"}),
        httpx.Response(200, json={"session_id": "full"}),
    )
    async with QuatrixClient(
        BASE, email="u@example.com", password="pw", pin="40516", transport=transport
    ) as c:
        await c.login()
        assert c.auth is not None and c.auth.credential is not None
        assert c.auth.credential.session_id.reveal() == "full"


@pytest.mark.parametrize("status", [200, 207])
async def test_an_unknown_mfa_code_is_a_typed_challenge_never_a_success(status: int) -> None:
    transport = scripted(
        httpx.Response(status, json={"session_id": "partial-75"}, headers={"Mfa-Code": "75"})
    )
    async with QuatrixClient(
        BASE,
        email="u@example.com",
        password="pw",
        totp_secret=generate_base32_secret(20),
        transport=transport,
    ) as client:
        with pytest.raises(UnknownSecondFactorError) as info:
            await client.login()
        assert info.value.mfa_code == 75 and info.value.error_code == 75
        assert info.value.session_id is not None and info.value.session_id.reveal() == "partial-75"
        assert "partial-75" not in str(info.value)
        assert client.auth is not None and client.auth.credential is None
        step = await client.session.login("u@example.com", "pw")
        assert step.kind == "unknown_mfa" and step.mfa_code == 75
