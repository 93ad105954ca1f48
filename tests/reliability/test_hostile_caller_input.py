"""Hostile caller input: every malformed argument gets a typed error before anything is sent.

Each case builds a client whose transport records every request it is asked to send, feeds one
bad argument (an invalid base32 secret, a malformed ``otpauth://`` URI, a code of the wrong
length or alphabet, a recovery code in the wrong format, an id that is not an id, a plain
``http://`` URL to a remote host with credentials) and asserts two things: the error is an
:class:`~mfa_common.errors.InvalidInputError` (of the specific subclass where the SDK has one),
and the transport saw no request at all — not even a login.

Ids: Quatrix user ids are opaque strings (UUIDs in practice), MetalCloud ids integers, X-MFA
reset paths a token or user id. Blank ids and the segments ``.`` and ``..`` (which a URL join
would resolve into another endpoint) are refused; an id with a ``/`` or other reserved characters
may be sent, but only as one percent-encoded segment of the intended endpoint.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from mfa_common import _logging
from mfa_common.code_providers import TotpCodeProvider
from mfa_common.errors import (
    InsecureTransportError,
    InvalidCodeError,
    InvalidInputError,
    InvalidOtpauthUriError,
    InvalidRecoveryCodeError,
    InvalidSecretError,
    MfaSdkError,
)
from mfa_common.options import ClientOptions
from mfa_common.otpauth import parse_otpauth_uri
from mfa_common.recovery_codes import RecoveryCodeFormat, RecoveryCodeStore, normalize_recovery_code
from mfa_common.retry import RetryPolicy
from mfa_common.totp import Totp, WeakSecretWarning, validate_code_format
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from quatrix_async import QuatrixClient

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
GOOD_RECOVERY = "MLNSPOB2L2ZRO2D5"

BAD_SECRETS = ["", "   ", "not base32!", "JBSWY3DP1", "ÄÖÜ", "JBSW Y3DP EHPK 3PX=P", "0" * 40]
BAD_URIS = [
    "otpauth://totp/alice",  # no secret
    "otpauth://totp/alice?secret=",  # empty secret
    "otpauth://totp/alice?secret=not-base32!",
    f"otpauth://totp/alice?secret={SECRET}&digits=12",
    f"otpauth://totp/alice?secret={SECRET}&digits=x",
    f"otpauth://totp/alice?secret={SECRET}&period=0",
    f"otpauth://totp/alice?secret={SECRET}&algorithm=MD5",
    f"otpauth://totp/alice?secret={SECRET}&secret={SECRET}",
    f"otpauth://hotp/alice?secret={SECRET}",  # hotp without counter
    f"otpauth://sms/alice?secret={SECRET}",
    f"http://totp/alice?secret={SECRET}",
    f"otpauth://totp/Evil:alice?secret={SECRET}&issuer=Good",
    "otpauth://totp/" + "a" * 10_000 + f"?secret={SECRET}",
]
BAD_CODES = ["", "12345", "1234567", "12a456", "12-456", "abcdef", "١٢٣٤٥٦", "123456\x00", "1" * 10_000]
BAD_RECOVERY = ["", "short", "MLNSPOB2L2ZRO2D", "MLNSPOB2L2ZRO2D5X", "MLNSPOB2L2ZRO2D!", "ÄLNSPOB2L2ZRO2D5"]
BAD_EMAIL_CODES = ["", "ABCD", "ABCDEF", "AB!DE", "ÄBCDE"]


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers 500 to anything, and remembers that it was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        return httpx.Response(500, json={"message": "should never be reached"})


@pytest.fixture(autouse=True)
def _quiet_weak_secret() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakSecretWarning)
        yield


def refused(
    expected: type[InvalidInputError] | tuple[type[InvalidInputError], ...],
    action: Callable[[RecordingTransport], Awaitable[Any]],
) -> None:
    """Run ``action`` (client construction included) and require a typed refusal, nothing sent."""
    transport = RecordingTransport()

    async def run() -> None:
        with pytest.raises(expected):
            await action(transport)

    anyio.run(run)
    assert transport.calls == []


# --------------------------------------------------------------------------- core helpers


@pytest.mark.parametrize("secret", BAD_SECRETS)
def test_invalid_base32_secret_is_refused_everywhere(secret: Any) -> None:
    with pytest.raises(InvalidSecretError):
        Totp(secret)
    with pytest.raises(InvalidSecretError):
        TotpCodeProvider(secret)

    async def quatrix(transport: RecordingTransport) -> None:
        async with QuatrixClient(
            "http://127.0.0.1", email="a@example.com", password="pw", totp_secret=secret, transport=transport
        ) as client:
            await client.profile.get()

    async def xmfa(transport: RecordingTransport) -> None:
        auth = XMfaTokenAuth("alice", "pw", totp_secret=secret)
        async with XMfaClient("http://127.0.0.1", auth=auth, transport=transport) as client:
            await client.user.get()

    async def metalcloud(transport: RecordingTransport) -> None:
        async with MetalCloudClient(
            "http://127.0.0.1", email="a@example.com", password="pw", totp_secret=secret, transport=transport
        ) as client:
            await client.user.get()

    for action in (quatrix, xmfa, metalcloud):
        refused(InvalidSecretError, action)


@pytest.mark.parametrize("uri", BAD_URIS)
def test_malformed_otpauth_uri_is_refused_everywhere(uri: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_otpauth_uri(uri)
    expected = (InvalidOtpauthUriError, InvalidSecretError)
    with pytest.raises(expected):
        Totp.from_uri(uri)

    async def quatrix(transport: RecordingTransport) -> None:
        async with QuatrixClient(
            "http://127.0.0.1", email="a@example.com", password="pw", totp_secret=uri, transport=transport
        ) as client:
            await client.profile.get()

    async def xmfa(transport: RecordingTransport) -> None:
        async with XMfaClient(
            "http://127.0.0.1", auth=XMfaTokenAuth("alice", "pw", totp_secret=uri), transport=transport
        ) as client:
            await client.user.get()

    async def metalcloud(transport: RecordingTransport) -> None:
        async with MetalCloudClient(
            "http://127.0.0.1", email="a@example.com", password="pw", totp_secret=uri, transport=transport
        ) as client:
            await client.user.get()

    for action in (quatrix, xmfa, metalcloud):
        refused(InvalidInputError, action)


@pytest.mark.parametrize("code", BAD_CODES)
def test_code_of_wrong_length_or_alphabet_is_refused_everywhere(code: str) -> None:
    with pytest.raises(InvalidCodeError):
        validate_code_format(code, digits=6)

    async def quatrix_login_step(transport: RecordingTransport) -> None:
        async with QuatrixClient("http://127.0.0.1", transport=transport) as client:
            await client.session.login_mfa("partial-session", "2FA", code)

    async def quatrix_set_mfa(transport: RecordingTransport) -> None:
        async with QuatrixClient(
            "http://127.0.0.1", email="a@example.com", password="pw", transport=transport
        ) as client:
            await client.profile.set_mfa("2FA", code)

    async def xmfa_exchange(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.session.auth_mfa("5c1e8a7d-pending-token-for-tests", code)

    async def xmfa_enable(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.mfa.enable(code, SECRET, [GOOD_RECOVERY])

    async def xmfa_disable(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.mfa.disable(code=code)

    async def metalcloud_enable(transport: RecordingTransport) -> None:
        async with MetalCloudClient("http://127.0.0.1", api_key="k" * 20, transport=transport) as client:
            await client.user.enable_2fa(code, revision=1)

    for action in (
        quatrix_login_step,
        quatrix_set_mfa,
        xmfa_exchange,
        xmfa_enable,
        xmfa_disable,
        metalcloud_enable,
    ):
        refused(InvalidCodeError, action)


@pytest.mark.parametrize("pin", ["", "   ", "12 34"])
def test_malformed_pin_is_refused(pin: str) -> None:
    async def quatrix_pin(transport: RecordingTransport) -> None:
        async with QuatrixClient("http://127.0.0.1", transport=transport) as client:
            await client.session.login_mfa("partial-session", "PIN", pin)

    refused(InvalidCodeError, quatrix_pin)


@pytest.mark.parametrize("auth_type", ["SMS", "", "totp", "2FA;drop"])
def test_unknown_auth_type_is_refused(auth_type: str) -> None:
    async def quatrix(transport: RecordingTransport) -> None:
        async with QuatrixClient(
            "http://127.0.0.1", email="a@example.com", password="pw", transport=transport
        ) as client:
            await client.mfa.remove_for_users(["4b1c2a9e-0000-4000-8000-000000000001"], auth_type)

    refused(InvalidInputError, quatrix)


@pytest.mark.parametrize("code", BAD_RECOVERY)
def test_recovery_code_in_wrong_format_is_refused(code: str) -> None:
    with pytest.raises(InvalidRecoveryCodeError):
        normalize_recovery_code(code, RecoveryCodeFormat.SHELLHUB)
    with pytest.raises(InvalidRecoveryCodeError):
        RecoveryCodeStore([GOOD_RECOVERY, code], format=RecoveryCodeFormat.SHELLHUB)

    async def recover(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.session.recover("alice", code)

    async def disable(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.mfa.disable(recovery_code=code)

    refused(InvalidRecoveryCodeError, recover)
    refused(InvalidRecoveryCodeError, disable)


@pytest.mark.parametrize("code", BAD_EMAIL_CODES)
def test_email_code_in_wrong_format_is_refused(code: str) -> None:
    async def reset(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.session.reset_mfa("reset-token", code, "ABCDE")

    refused(InvalidCodeError, reset)


def test_conflicting_factors_are_refused() -> None:
    async def two_factors(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.mfa.disable(code="123456", recovery_code=GOOD_RECOVERY)

    async def half_email(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.mfa.disable(main_email_code="ABCDE")

    refused(InvalidInputError, two_factors)
    refused(InvalidInputError, half_email)


def test_short_new_password_is_refused() -> None:
    async def set_password(transport: RecordingTransport) -> None:
        async with QuatrixClient(
            "http://127.0.0.1", email="a@example.com", password="pw", transport=transport
        ) as client:
            await client.profile.set_password("old-password", "12345")

    refused(InvalidInputError, set_password)


# --------------------------------------------------------------------------- ids

# Ids every client must refuse: blank ones, and "." / ".." which a URL join would resolve into
# another endpoint ("..": GET /user/metadata/.. would become GET /user, the user list).
REFUSED_IDS = ["", "   ", ".", ".."]
# Ids with a "/" (or other reserved characters) are sent, but only ever as one percent-encoded
# path segment of the intended endpoint: they can never reach another one.
ENCODED_IDS = {"../../admin": "..%2F..%2Fadmin", "a/b": "a%2Fb", "?x=1#y": "%3Fx%3D1%23y"}


@pytest.mark.parametrize("user_id", REFUSED_IDS)
def test_quatrix_user_id_that_is_not_an_id_is_refused(user_id: str) -> None:
    async def metadata(transport: RecordingTransport) -> None:
        async with QuatrixClient(
            "http://127.0.0.1", email="a@example.com", password="pw", transport=transport
        ) as client:
            await client.users.metadata(user_id)

    refused(InvalidInputError, metadata)


@pytest.mark.parametrize(("user_id", "segment"), ENCODED_IDS.items())
def test_quatrix_user_id_with_reserved_characters_stays_one_segment(user_id: str, segment: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        if request.url.path.endswith("/session/login"):
            return httpx.Response(200, json={"session_id": "s-1"})
        return httpx.Response(404, json={"code": 20, "msg": "User not found"})

    async def run() -> None:
        async with QuatrixClient(
            "http://127.0.0.1",
            email="a@example.com",
            password="pw",
            transport=httpx.MockTransport(handler),
            options=ClientOptions(retry=RetryPolicy(max_retries=0)),
        ) as client:
            with pytest.raises(MfaSdkError):
                await client.users.metadata(user_id)

    anyio.run(run)
    assert seen[1:2] == [f"/api/1.0/user/metadata/{segment}"]


@pytest.mark.parametrize("ids", [[], [""], ["  "], ["4b1c2a9e-0000-4000-8000-000000000001", ""], [42]])
def test_quatrix_admin_ids_that_are_not_ids_are_refused(ids: list[Any]) -> None:
    async def reset(transport: RecordingTransport) -> None:
        async with QuatrixClient(
            "http://127.0.0.1", email="a@example.com", password="pw", transport=transport
        ) as client:
            await client.mfa.reset_for_users(ids)

    refused(InvalidInputError, reset)


@pytest.mark.parametrize("user_id", ["5", "..", -1, True, 1.5, None, "../x"])
def test_metalcloud_user_id_that_is_not_an_id_is_refused(user_id: Any) -> None:
    async def get(transport: RecordingTransport) -> None:
        async with MetalCloudClient("http://127.0.0.1", api_key="k" * 20, transport=transport) as client:
            await client.users.get(user_id)

    async def suspend(transport: RecordingTransport) -> None:
        async with MetalCloudClient("http://127.0.0.1", api_key="k" * 20, transport=transport) as client:
            await client.users.archive(user_id)

    refused(InvalidInputError, get)
    refused(InvalidInputError, suspend)


@pytest.mark.parametrize("segment", REFUSED_IDS)
def test_xmfa_reset_segment_that_is_not_an_id_is_refused(segment: str) -> None:
    async def reset(transport: RecordingTransport) -> None:
        async with XMfaClient("http://127.0.0.1", transport=transport) as client:
            await client.session.reset_mfa(segment, "ABCDE", "FGHIJ")

    refused(InvalidInputError, reset)


@pytest.mark.parametrize(("token", "segment"), ENCODED_IDS.items())
def test_xmfa_reset_segment_with_reserved_characters_stays_one_segment(token: str, segment: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"message": "not found"})

    async def run() -> None:
        async with XMfaClient(
            "http://127.0.0.1",
            transport=httpx.MockTransport(handler),
            options=ClientOptions(retry=RetryPolicy(max_retries=0)),
        ) as c:
            with pytest.raises(MfaSdkError):
                await c.session.reset_mfa(token, "ABCDE", "FGHIJ")

    anyio.run(run)
    assert seen == [f"/api/user/mfa/reset/{segment}"]


# --------------------------------------------------------------------------- transport rules

REMOTE = "http://api.example.com"


def test_plain_http_to_a_remote_host_with_credentials_is_refused_by_every_client() -> None:
    async def quatrix(transport: RecordingTransport) -> None:
        async with QuatrixClient(REMOTE, email="a@example.com", password="pw", transport=transport) as client:
            await client.profile.get()

    async def xmfa(transport: RecordingTransport) -> None:
        async with XMfaClient(REMOTE, auth=XMfaTokenAuth("alice", "pw"), transport=transport) as client:
            await client.user.get()

    async def metalcloud_key(transport: RecordingTransport) -> None:
        async with MetalCloudClient(REMOTE, api_key="k" * 20, transport=transport) as client:
            await client.user.get()

    async def metalcloud_login(transport: RecordingTransport) -> None:
        async with MetalCloudClient(
            REMOTE, email="a@example.com", password="pw", transport=transport
        ) as client:
            await client.user.get()

    for action in (quatrix, xmfa, metalcloud_key, metalcloud_login):
        refused(InsecureTransportError, action)


def test_plain_http_to_loopback_or_with_explicit_opt_in_is_allowed() -> None:
    """The refusal is specific: loopback and an explicit opt-in do send (the transport is reached)."""
    for url, opt_in in (("http://127.0.0.1", False), ("http://localhost", False), (REMOTE, True)):
        transport = RecordingTransport()

        async def run(
            url: str = url, opt_in: bool = opt_in, transport: RecordingTransport = transport
        ) -> None:
            async with MetalCloudClient(
                url,
                api_key="k" * 20,
                transport=transport,
                options=ClientOptions(allow_insecure_http=opt_in, retry=RetryPolicy(max_retries=0)),
            ) as client:
                with pytest.raises(Exception) as info:
                    await client.user.get()
                assert not isinstance(info.value, InvalidInputError)

        anyio.run(run)
        assert transport.calls == ["GET /api/v2/user"]


@pytest.fixture(autouse=True)
def _isolated_log_masks() -> Iterator[None]:
    """Fragments masked in log lines are process-wide; keep this module's out of other tests."""
    saved = dict(_logging._MASKED)
    yield
    _logging._MASKED.clear()
    _logging._MASKED.update(saved)


def test_secret_path_segment_with_reserved_characters_is_masked_whole() -> None:
    token = "tok3n-head/tok3n-tail?x"

    async def run() -> None:
        transport = httpx.MockTransport(lambda request: httpx.Response(404, json={"message": "nope"}))
        async with XMfaClient(
            "http://127.0.0.1", transport=transport, options=ClientOptions(retry=RetryPolicy(max_retries=0))
        ) as client:
            with pytest.raises(MfaSdkError):
                await client.session.reset_mfa(token, "ABCDE", "FGHIJ")

    anyio.run(run)
    line = "HTTP Request: PUT http://127.0.0.1/api/user/mfa/reset/" + quote(token, safe="") + " 404"
    redacted = _logging.redact_text(line)
    assert "tok3n-head" not in redacted
    assert "tok3n-tail" not in redacted
    assert "/api/user/mfa/reset/" in redacted  # nothing but the secret is masked
