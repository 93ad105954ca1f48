"""No secret in the text of any public object or typical exception.

Every public object that holds a secret is built with known secret values — the three clients
with credentials, each auth backend after a real login against its fake, ``Totp``,
``OtpauthUri``, recovery-code stores and reservations, issued codes and code providers, the
static auth backends, and the models that carry tokens, secrets and API keys (Quatrix
``LoginResult``, ``TwoFactorSecret``, the session credential; X-MFA ``UserAuth``, ``LoginResult``,
``MfaGenerate``, ``RecoverResult``, ``JwtCredential``; MetalCloud ``JwtSession``, ``LoginResult``,
``TwoFactorAuthenticationSecret``, ``UserApiKey``). For each, ``repr()``, ``str()``, an f-string,
``format()`` and a ``vars()``-style dump of its attributes (``__dict__`` or slots) must not
contain any of the secret values. The same holds for the exceptions raised on a wrong password,
a wrong code, a lockout and an expired MFA token (their ``str``, ``repr``, ``args``, attributes
and formatted traceback). A planted leak proves the check catches one.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.auth import MetalCloudLoginAuth
from metalcloud_async.testing import MetalCloudFake
from mfa_common.auth import ApiKeyAuth, BasicAuth, BearerTokenAuth
from mfa_common.clock import FakeClock
from mfa_common.code_providers import (
    CallbackCodeProvider,
    MfaChallenge,
    RecoveryCodeProvider,
    StaticCodeProvider,
    TotpCodeProvider,
)
from mfa_common.errors import (
    AccountLockedError,
    AuthenticationError,
    MfaCodeRejectedError,
    MfaSdkError,
    MfaTokenExpiredError,
)
from mfa_common.otpauth import parse_otpauth_uri
from mfa_common.recovery_codes import RecoveryCodeStore
from mfa_common.replay_guard import StepRegistry
from mfa_common.secret import Secret
from mfa_common.totp import Totp, WeakSecretWarning
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

START = 1_750_000_000.0
PASSWORD = "Pa55word-never-shown"
WRONG_PASSWORD = "Wr0ng-pa55word-never-shown"
TOTP_SECRET = "KRUGS4ZANFZSA43FMNZGK5BAON2HE2LOM4"  # "This is secret string" in base32
PIN = "90517"
RECOVERY = ["MLNSPOB2L2ZRO2D5", "35QBUON4JAA4V6KP", "UYH34OY5RNDRRSUS"]
API_KEY = "1:" + "Zq7" * 21
BEARER = "bearer-token-never-shown-5521"
URI = f"otpauth://totp/Acme:alice@example.com?secret={TOTP_SECRET}&issuer=Acme"


@pytest.fixture(autouse=True)
def _quiet_weak_secret() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakSecretWarning)
        yield


# --------------------------------------------------------------------------- the check


def _attributes(obj: Any) -> dict[str, Any]:
    """A ``vars()``-style dump: ``__dict__`` plus every slot along the MRO (not for a ``Secret``
    itself, whose one slot is the value it exists to hold)."""
    found: dict[str, Any] = {}
    if isinstance(obj, Secret):
        return found
    if hasattr(obj, "__dict__"):
        found.update(vars(obj))
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in found and name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                found[name] = getattr(obj, name)
    return found


def texts_of(obj: Any) -> list[str]:
    """Every rendering of ``obj`` a careless program might print or log."""
    out = [repr(obj), str(obj), f"{obj}", f"{obj!r}", format(obj, "")]
    attributes = _attributes(obj)
    out.append(repr(attributes))
    out.extend(f"{name}={value!s}" for name, value in attributes.items())
    if isinstance(obj, BaseException):
        out.append(repr(obj.args))
        out.append("".join(traceback.format_exception(obj)))
    return out


def assert_no_secret(objects: Iterable[Any], secrets: Iterable[str | Secret[str]]) -> None:
    values = {s.reveal() if isinstance(s, Secret) else s for s in secrets}
    values = {v for v in values if v}
    assert values, "nothing to look for"
    for obj in objects:
        for text in texts_of(obj):
            for value in values:
                assert value not in text, f"a secret appears in a rendering of {type(obj).__name__}"


def test_the_check_catches_a_planted_leak() -> None:
    class Leaky:
        def __init__(self, token: str) -> None:
            self.token = token

        def __repr__(self) -> str:
            return "Leaky()"

    class LeakyRepr:
        def __repr__(self) -> str:
            return f"LeakyRepr({BEARER})"

    with pytest.raises(AssertionError):
        assert_no_secret([Leaky(BEARER)], [BEARER])  # only the vars() dump shows it
    with pytest.raises(AssertionError):
        assert_no_secret([LeakyRepr()], [BEARER])
    with pytest.raises(AssertionError):
        assert_no_secret([ValueError(f"token {BEARER}")], [BEARER])
    assert_no_secret([Secret(BEARER), Leaky("public")], [BEARER])


# --------------------------------------------------------------------------- core objects


def test_core_objects_hide_their_secrets() -> None:
    clock = FakeClock(START)
    totp = Totp(TOTP_SECRET)
    code = totp.code_at(clock.now())
    store = RecoveryCodeStore(RECOVERY)
    reservation = store.reserve()
    provider = TotpCodeProvider(TOTP_SECRET, clock=clock, registry=StepRegistry())
    issued = anyio.run(provider.issue, MfaChallenge(kind="totp"))
    assert issued.value.reveal().isdigit()
    recovery_provider = RecoveryCodeProvider(RecoveryCodeStore(RECOVERY))
    recovery_issued = anyio.run(recovery_provider.issue, MfaChallenge(kind="recovery"))
    objects = [
        totp,
        Totp.from_uri(URI),
        totp.secret,
        totp.to_uri(account="alice@example.com", issuer="Acme"),
        parse_otpauth_uri(URI),
        store,
        reservation,
        provider,
        issued,
        recovery_provider,
        recovery_issued,
        StaticCodeProvider(PIN),
        CallbackCodeProvider(lambda challenge: PIN, kind="pin", digits=None),
        BasicAuth("alice", PASSWORD),
        ApiKeyAuth(API_KEY),
        BearerTokenAuth(BEARER),
        Secret(PASSWORD),
    ]
    assert_no_secret(objects, [TOTP_SECRET, code, issued.value, PIN, PASSWORD, API_KEY, BEARER, *RECOVERY])


# --------------------------------------------------------------------------- Quatrix


def test_quatrix_objects_and_errors_hide_their_secrets() -> None:
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock)
    user = fake.add_user(email="alice@example.com", password=PASSWORD, totp_secret=TOTP_SECRET)
    pin_user = fake.add_user(email="pin@example.com", password=PASSWORD, pin=PIN)
    registry = StepRegistry()
    seen: list[Any] = []
    secrets: list[str | Secret[str]] = [PASSWORD, TOTP_SECRET, PIN, WRONG_PASSWORD]

    def client(**kw: Any) -> QuatrixClient:
        return QuatrixClient("http://127.0.0.1", clock=clock, transport=httpx.ASGITransport(fake), **kw)

    async def run() -> None:
        provider = TotpCodeProvider(TOTP_SECRET, clock=clock, registry=registry)
        async with client(email=user.email, password=PASSWORD, code_provider=provider) as c:
            await c.login()
            auth = c.auth
            assert auth is not None and auth.credential is not None
            secrets.append(auth.credential.session_id)
            seen.extend([c, auth, auth.credential, provider, c.profile, c.mfa])
            seen.append(await c.profile.generate_2fa())
            step = await c.session.login(user.email, PASSWORD)
            assert step.session_id is not None
            secrets.append(step.session_id)
            seen.append(step)
        async with client(email=pin_user.email, password=PASSWORD, pin=PIN) as c:
            await c.login()
            seen.extend([c, c.auth])
        # Typical failures: wrong password, wrong code.
        async with client(email=user.email, password=WRONG_PASSWORD) as c:
            with pytest.raises(AuthenticationError) as wrong_password:
                await c.profile.get()
            seen.append(wrong_password.value)
        wrong_code = f"{(int(Totp(TOTP_SECRET).code_at(clock.now())) + 1) % 1_000_000:06d}"
        secrets.append(wrong_code)
        callback = CallbackCodeProvider(lambda challenge: wrong_code)
        async with client(email=user.email, password=PASSWORD, code_provider=callback) as c:
            with pytest.raises(MfaCodeRejectedError) as rejected:
                await c.profile.get()
            seen.append(rejected.value)

    anyio.run(run)
    fake_sessions = [s.id for s in fake._sessions.values()]
    assert_no_secret(seen, [*secrets, *fake_sessions])


# --------------------------------------------------------------------------- X-MFA


def test_xmfa_objects_and_errors_hide_their_secrets() -> None:
    clock = FakeClock(START)
    # The 401 switch: its answer tells an expired MFA token from a wrong code (the default 500
    # does not), and both errors are checked here.
    fake = XMfaFake(clock=clock, jwt_ttl=3600.0, auth_failure_status=401)
    fake.add_user(
        "alice", PASSWORD, email="alice@example.com", totp_secret=TOTP_SECRET, recovery_codes=RECOVERY
    )
    fake.add_user("bob", PASSWORD, email="bob@example.com")
    registry = StepRegistry()
    seen: list[Any] = []
    secrets: list[str | Secret[str]] = [PASSWORD, TOTP_SECRET, WRONG_PASSWORD, *RECOVERY]

    def client(**kw: Any) -> XMfaClient:
        return XMfaClient("http://127.0.0.1", clock=clock, transport=httpx.ASGITransport(fake), **kw)

    async def run() -> None:
        provider = TotpCodeProvider(TOTP_SECRET, clock=clock, registry=registry)
        auth = XMfaTokenAuth("alice", PASSWORD, code_provider=provider, clock=clock)
        async with client(auth=auth) as c:
            me = await c.user.get()
            assert auth.credential is not None
            secrets.extend([me.token, auth.credential.token])
            seen.extend([c, auth, auth.credential, me, provider])
        store = RecoveryCodeStore(RECOVERY)
        recovery_auth = XMfaTokenAuth("alice", PASSWORD, recovery_codes=store, clock=clock)
        async with client(auth=recovery_auth) as c:
            await c.user.get()
            seen.extend([c, recovery_auth, recovery_auth.credential, store])
        async with client() as c:
            result = await c.session.login("alice", PASSWORD)
            assert result.mfa_token is not None
            secrets.append(result.mfa_token)
            seen.append(result)
            # A wrong code, then an expired (unknown) MFA token.
            wrong_code = f"{(int(Totp(TOTP_SECRET).code_at(clock.now())) + 1) % 1_000_000:06d}"
            secrets.append(wrong_code)
            with pytest.raises(MfaCodeRejectedError) as rejected:
                await c.session.auth_mfa(result.mfa_token, wrong_code)
            seen.append(rejected.value)
            expired_token = "9b2f3c51-expired-mfa-token"
            secrets.append(expired_token)
            issued = await provider.issue(MfaChallenge(kind="totp"))
            with pytest.raises(MfaTokenExpiredError) as expired:
                await c.session.auth_mfa(expired_token, issued.value)
            seen.append(expired.value)
            recovered = await c.session.recover("alice", RECOVERY[2])
            secrets.append(recovered.user.token)
            seen.extend([recovered, recovered.user])
        async with client() as c:
            bob = await c.session.login("bob", PASSWORD)
            assert bob.user is not None
            generated = await c.mfa.generate()
            secrets.extend([bob.user.token, generated.secret, *generated.recovery_codes])
            seen.extend([bob, bob.user, generated])
            # A lockout: wrong passwords until the server locks the account.
            locked: AccountLockedError | None = None
            for _ in range(5):
                try:
                    await c.session.login("bob", WRONG_PASSWORD)
                except AccountLockedError as exc:
                    locked = exc
                    break
                except AuthenticationError as exc:
                    seen.append(exc)
            assert locked is not None
            seen.append(locked)

    anyio.run(run)
    assert_no_secret(seen, secrets)


# --------------------------------------------------------------------------- MetalCloud


def test_metalcloud_objects_and_errors_hide_their_secrets() -> None:
    clock = FakeClock(START)
    fake = MetalCloudFake(clock=clock, jwt_ttl=3600)
    admin = fake.add_user("root@example.test", PASSWORD, access_level="root", api_key=API_KEY)
    fake.add_user("totp@example.test", PASSWORD, access_level="admin", totp_secret=TOTP_SECRET)
    registry = StepRegistry()
    seen: list[Any] = []
    secrets: list[str | Secret[str]] = [PASSWORD, TOTP_SECRET, API_KEY, WRONG_PASSWORD]
    assert admin.api_key == API_KEY

    def client(**kw: Any) -> MetalCloudClient:
        return MetalCloudClient(
            "http://metalcloud.localhost", clock=clock, transport=httpx.ASGITransport(fake), **kw
        )

    async def run() -> None:
        async with client(api_key=API_KEY) as c:
            key = await c.user.get_api_key()
            generated = await c.user.generate_2fa()
            secrets.append(generated.secret_2fa)
            seen.extend([c, c.auth, key, generated])
        provider = TotpCodeProvider(TOTP_SECRET, clock=clock, registry=registry)
        async with client(email="totp@example.test", password=PASSWORD, code_provider=provider) as c:
            await c.user.get()
            backend = c.auth
            assert isinstance(backend, MetalCloudLoginAuth) and backend.credential is not None
            secrets.append(backend.credential.token)
            seen.extend([c, backend, backend.credential])
            step = await c.session.login("root@example.test", PASSWORD)
            assert step.token is not None
            secrets.append(step.token)
            seen.append(step)
        async with client(email="root@example.test", password=WRONG_PASSWORD) as c:
            with pytest.raises(AuthenticationError) as wrong_password:
                await c.user.get()
            seen.append(wrong_password.value)
        wrong_code = f"{(int(Totp(TOTP_SECRET).code_at(clock.now())) + 1) % 1_000_000:06d}"
        secrets.append(wrong_code)
        callback = CallbackCodeProvider(lambda challenge: wrong_code)
        async with client(email="totp@example.test", password=PASSWORD, code_provider=callback) as c:
            with pytest.raises(MfaSdkError) as rejected:
                await c.user.get()
            seen.append(rejected.value)

    anyio.run(run)
    assert_no_secret(seen, secrets)
