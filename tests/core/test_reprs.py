"""Every client and every fake has a repr that says what it is (base URL, kind of credential,
closed or not; accounts and clock) and never a secret."""

from __future__ import annotations

import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

PASSWORD = "pw-7f3a9c-never-shown"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
API_KEY = "key-4b1d0e-never-shown"
SECRETS = (PASSWORD, TOTP_SECRET, API_KEY)


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("make", "auth_kind"),
    [
        (
            lambda: QuatrixClient(
                "http://127.0.0.1:9", email="ops@example.com", password=PASSWORD, totp_secret=TOTP_SECRET
            ),
            "QuatrixSessionAuth",
        ),
        (lambda: MetalCloudClient("http://127.0.0.1:9", api_key=API_KEY), "MetalCloudApiKeyAuth"),
        (
            lambda: MetalCloudClient(
                "http://127.0.0.1:9", email="ops@example.com", password=PASSWORD, totp_secret=TOTP_SECRET
            ),
            "MetalCloudLoginAuth",
        ),
        (
            lambda: XMfaClient(
                "http://127.0.0.1:9", auth=XMfaTokenAuth("bob", PASSWORD, totp_secret=TOTP_SECRET)
            ),
            "XMfaTokenAuth",
        ),
        (lambda: XMfaClient("http://127.0.0.1:9"), "SessionTokenAuth"),
    ],
)
async def test_client_repr_shows_url_auth_kind_and_closed_state(make, auth_kind: str) -> None:  # type: ignore[no-untyped-def]
    client = make()
    text = repr(client)
    assert text.startswith(type(client).__name__ + "(")
    assert "http://127.0.0.1:9" in text
    assert f"auth={auth_kind}" in text
    assert "closed=False" in text
    _assert_no_secret(text)
    await client.aclose()
    assert "closed=True" in repr(client)


def test_client_without_credentials_says_so() -> None:
    client = QuatrixClient("http://127.0.0.1:9", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert "auth=None" in repr(client)


def test_fake_reprs_count_accounts_and_show_the_clock_never_a_password() -> None:
    clock = FakeClock(1_700_000_000)
    quatrix = QuatrixFake(clock=clock)
    assert repr(quatrix) == "QuatrixFake(accounts=0, sessions=0, clock=FakeClock(now=1700000000.000))"
    quatrix.add_user("ops@example.com", PASSWORD, totp_secret=TOTP_SECRET, admin=True)
    assert "accounts=1" in repr(quatrix)

    metal = MetalCloudFake(clock=clock)
    metal.add_user("ops@example.com", PASSWORD, totp_secret=TOTP_SECRET, api_key=API_KEY)
    assert repr(metal) == "MetalCloudFake(accounts=1, logins=0, clock=FakeClock(now=1700000000.000))"

    xmfa = XMfaFake(clock=clock)
    xmfa.add_user("bob", PASSWORD, totp_secret=TOTP_SECRET)
    assert repr(xmfa) == "XMfaFake(accounts=1, clock=FakeClock(now=1700000000.000))"
    for fake in (quatrix, metal, xmfa):
        _assert_no_secret(repr(fake))
