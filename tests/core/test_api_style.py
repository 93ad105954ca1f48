"""One public API style across the three clients: ``client.auth`` is the auth backend, the
operation groups are nouns with the same names where they mean the same thing, the credentials
are the same keywords, the connection tunables are one frozen object (``ClientOptions``), and every
conflicting or incomplete set of arguments raises ``InvalidInputError`` without echoing a value.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.auth import MetalCloudLoginAuth
from mfa_common.auth import ApiKeyAuth, CredentialAuth
from mfa_common.client import BaseClient
from mfa_common.errors import InvalidInputError
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from quatrix_async import QuatrixClient
from quatrix_async.auth import QuatrixSessionAuth

URL = "https://api.example.test"
SECRET = "JBSWY3DPEHPK3PXP"
LONG_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "pw-never-echoed-7d1f"
KEY = "key-never-echoed-9a3c"

CLIENTS: dict[str, type[BaseClient]] = {
    "quatrix": QuatrixClient,
    "metalcloud": MetalCloudClient,
    "xmfa": XMfaClient,
}
#: The login keyword naming the person, per client (the other credential keywords are shared).
LOGIN_KEY = {"quatrix": "email", "metalcloud": "email", "xmfa": "username"}
#: The backend a password login builds, per client.
LOGIN_BACKEND: dict[str, type[CredentialAuth[Any]]] = {
    "quatrix": QuatrixSessionAuth,
    "metalcloud": MetalCloudLoginAuth,
    "xmfa": XMfaTokenAuth,
}


def _login(name: str, **extra: object) -> dict[str, object]:
    return {LOGIN_KEY[name]: "person@example.test", "password": PASSWORD, **extra}


def test_base_client_takes_its_tunables_as_one_options_object() -> None:
    # One definition of the tunables: ClientOptions. No constructor repeats them as keywords.
    keywords = {
        name
        for name, parameter in inspect.signature(BaseClient.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert keywords == {"auth", "transport", "options", "error_mapper"}
    assert not keywords & {field.name for field in attrs.fields(ClientOptions)}


@pytest.mark.parametrize("name", CLIENTS)
def test_every_client_takes_the_options_object_and_nothing_untyped(name: str) -> None:
    parameters = inspect.signature(CLIENTS[name].__init__).parameters
    assert not [p for p in parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    shared = ("auth", "clock", "totp_secret", "code_provider", "password", "transport", "options")
    assert all(keyword in parameters for keyword in shared), [k for k in shared if k not in parameters]
    assert not {field.name for field in attrs.fields(ClientOptions)} & set(parameters)


@pytest.mark.anyio
@pytest.mark.parametrize("name", CLIENTS)
async def test_one_options_object_configures_every_client_the_same_way(name: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    options = ClientOptions(
        timeout=7.5, deadline=30.0, retry=RetryPolicy(max_retries=1), headers={"X-Team": "ops"}
    )
    async with CLIENTS[name](URL, transport=httpx.MockTransport(handler), options=options) as client:
        assert client.options is options
        assert client.retry_policy.max_retries == 1
        await client.requestor.request("GET", "anything", authenticated=False)
    assert seen[0].headers["X-Team"] == "ops"
    assert seen[0].extensions["timeout"] == httpx.Timeout(7.5).as_dict()


def test_client_options_are_frozen_and_refuse_an_unknown_name() -> None:
    options = ClientOptions(timeout=5)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.timeout = httpx.Timeout(6)  # type: ignore[misc]
    with pytest.raises(TypeError, match="timeuot"):
        ClientOptions(timeuot=5)  # type: ignore[call-arg]
    with pytest.raises(InvalidInputError, match="max_body_bytes"):
        ClientOptions(max_body_bytes=0)


@pytest.mark.parametrize("name", CLIENTS)
def test_an_unknown_keyword_is_refused_by_name(name: str) -> None:
    with pytest.raises(TypeError, match="timeuot"):
        CLIENTS[name](URL, timeuot=5)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", CLIENTS)
def test_client_auth_is_the_backend_of_a_password_login(name: str) -> None:
    client = CLIENTS[name](URL, **_login(name, totp_secret=SECRET))  # type: ignore[arg-type]
    assert isinstance(client.auth, LOGIN_BACKEND[name])
    assert isinstance(client.auth, httpx.Auth)


@pytest.mark.parametrize("name", ["quatrix", "metalcloud"])
def test_client_auth_is_the_backend_of_an_api_key(name: str) -> None:
    client = CLIENTS[name](URL, api_key=KEY)  # type: ignore[call-arg]
    assert isinstance(client.auth, ApiKeyAuth)


@pytest.mark.parametrize("name", CLIENTS)
def test_client_auth_is_the_backend_given(name: str) -> None:
    given = httpx.BasicAuth("u", "p")
    assert CLIENTS[name](URL, auth=given).auth is given


@pytest.mark.parametrize("name", CLIENTS)
def test_the_login_steps_are_client_session_and_a_login_method_everywhere(name: str) -> None:
    client = CLIENTS[name](URL, **_login(name))  # type: ignore[arg-type]
    session = client.session  # type: ignore[attr-defined]
    assert type(session).__name__ == "SessionAPI"
    assert inspect.iscoroutinefunction(session.login)
    assert inspect.iscoroutinefunction(client.login)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", CLIENTS)
def test_group_attributes_are_nouns_whose_class_is_the_noun_plus_api(name: str) -> None:
    client = CLIENTS[name](URL)
    groups = {
        attr: type(value).__name__
        for attr, value in vars(client).items()
        if not attr.startswith("_") and type(value).__name__.endswith("API")
    }
    assert "session" in groups
    for attr, class_name in groups.items():
        assert class_name == attr.title().replace("_", "") + "API", (attr, class_name)


TWO_CREDENTIALS = [
    (name, extra)
    for name in CLIENTS
    for extra in ({"auth": httpx.BasicAuth("u", "p")}, {"api_key": KEY})
    if not ("api_key" in extra and name == "xmfa")  # the X-MFA-Token API has no API keys
]


@pytest.mark.parametrize(
    ("name", "extra"), TWO_CREDENTIALS, ids=[f"{n}-login-and-{next(iter(e))}" for n, e in TWO_CREDENTIALS]
)
def test_two_credentials_raise_invalid_input_naming_the_keywords_not_the_values(
    name: str, extra: dict[str, object]
) -> None:
    with pytest.raises(InvalidInputError, match="give one credential") as info:
        CLIENTS[name](URL, **_login(name, **extra))  # type: ignore[arg-type]
    message = str(info.value)
    assert PASSWORD not in message and KEY not in message
    assert f"{LOGIN_KEY[name]}=" in message


@pytest.mark.parametrize("name", CLIENTS)
@pytest.mark.parametrize("stray", ["password", "totp_secret", "code_provider"])
def test_a_login_keyword_without_the_login_raises_invalid_input(name: str, stray: str) -> None:
    value: object = {"password": PASSWORD, "totp_secret": SECRET, "code_provider": object()}[stray]
    with pytest.raises(InvalidInputError, match=f"{stray}=: only with {LOGIN_KEY[name]}=") as info:
        CLIENTS[name](URL, **{stray: value})  # type: ignore[arg-type]
    assert PASSWORD not in str(info.value) and SECRET not in str(info.value)


@pytest.mark.parametrize("name", CLIENTS)
def test_a_login_without_its_password_raises_invalid_input(name: str) -> None:
    with pytest.raises(InvalidInputError, match="needs password="):
        CLIENTS[name](URL, **{LOGIN_KEY[name]: "person@example.test"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: XMfaTokenAuth("u", PASSWORD, totp_secret=SECRET, code_provider=object()),  # type: ignore[arg-type]
    ],
    ids=["xmfa-totp-and-provider"],
)
def test_backend_conflicts_raise_invalid_input(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidInputError):
        make()


@pytest.mark.anyio
@pytest.mark.parametrize("name", CLIENTS)
async def test_login_on_a_client_without_a_login_raises_invalid_input(name: str) -> None:
    async with CLIENTS[name](URL, auth=httpx.BasicAuth("u", "p")) as client:
        with pytest.raises(InvalidInputError, match="login"):
            await client.login()  # type: ignore[attr-defined]


def test_client_options_resolve_for_type_checkers_and_introspection() -> None:
    hints = typing.get_type_hints(ClientOptions)
    assert set(hints) == {field.name for field in attrs.fields(ClientOptions)}


# --------------------------------------------------------------------------- with_options


@pytest.mark.anyio
async def test_with_options_shares_the_login_and_the_pool_and_changes_only_the_call_defaults() -> None:
    from mfa_common.clock import FakeClock
    from mfa_common.errors import ClientClosedError, ServerError
    from mfa_common.options import RequestOptions
    from quatrix_async.testing import QuatrixFake

    clock = FakeClock(1_700_000_000.0)
    fake = QuatrixFake(clock=clock)
    fake.add_user("ops@example.com", "ops-password", totp_secret=LONG_SECRET, admin=True)
    seen: list[httpx.Request] = []
    inner = httpx.ASGITransport(app=fake)
    failing_once: set[str] = set()

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/profile/info") and "failed" not in failing_once:
            failing_once.add("failed")
            return httpx.Response(503, json={"code": -1, "msg": "busy"})
        return await inner.handle_async_request(request)

    client = QuatrixClient(
        "http://127.0.0.1",
        email="ops@example.com",
        password="ops-password",
        totp_secret=LONG_SECRET,
        clock=clock,
        transport=httpx.MockTransport(handler),
        options=ClientOptions(retry=RetryPolicy(max_retries=2, initial_backoff=0.001, max_backoff=0.002)),
    )
    twin = client.with_options(max_retries=0, headers={"X-Trace": "twin"})
    assert type(twin) is QuatrixClient and twin is not client
    assert twin.auth is client.auth and twin.profile is not client.profile

    await client.profile.get()
    await twin.profile.get()  # the same session: no second login
    assert fake.logins_of("ops@example.com") == 1
    assert [r.headers.get("X-Trace") for r in seen if r.url.path.endswith("/profile")] == [None, "twin"]

    with pytest.raises(ServerError):  # the twin's default: no retry
        await twin.profile.info()
    await twin.profile.info(options=RequestOptions(max_retries=1))  # a per-call option still wins

    await twin.aclose()  # the client it came from owns the pool and the login: nothing closes
    assert not client.closed
    await client.profile.get()
    await client.aclose()
    assert twin.closed
    with pytest.raises(ClientClosedError):
        await twin.profile.get()
    assert fake.sessions_of("ops@example.com", state=None) == []
