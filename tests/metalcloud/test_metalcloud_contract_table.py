"""Every operation of ``tests/specs/metalcloud-v2.yaml``, with its success and every error status
it documents, sent raw to the fake and validated against the spec, in-process and over a
loopback socket. The coverage check fails when an operation or a documented status has no case
(unless it is listed in ``UNREACHABLE`` with the reason the fake cannot produce it)."""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from metalcloud_async.testing import FakeUser, MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.testing import SwappableApp, generate_base32_secret, serve
from mfa_common.totp import Totp, WeakSecretWarning
from tests.contract import SPECS, ValidatingTransport

from .test_metalcloud_contract import spec_violations

pytestmark = pytest.mark.anyio

P = "/api/v2"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVsbG8td29ybGQtZXhhbXBsZS1rZXktYnl0ZXM= alice@laptop"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNlY29uZC1leGFtcGxlLWtleS1ieXRlcy1oZXJl bob@desk"


class World:
    """A fresh fake: root admin (account 101), a 2FA admin, a plain user (account 102), a
    suspended user, and an unverified target user (account 101)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.fake = MetalCloudFake(clock=clock)
        add = self.fake.add_user
        self.root = add("root@example.test", "root-password", access_level="root", account_id=101)
        self.totp_secret = generate_base32_secret(20)
        self.totp = add(
            "totp@example.test", "totp-password", access_level="admin", totp_secret=self.totp_secret
        )
        self.plain = add("plain@example.test", "plain-password", account_id=102)
        self.susp = add("susp@example.test", "susp-password", suspended=True)
        self.target = add("target@example.test", "target-password", email_verified=False, account_id=101)

    @staticmethod
    def key(user: FakeUser, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {user.api_key}", **extra}

    def admin(self, **extra: str) -> dict[str, str]:
        return self.key(self.root, **extra)

    def rev(self, user: FakeUser) -> dict[str, str]:
        return self.admin(**{"If-Match": str(user.revision)})

    def code(self, secret: str) -> str:
        self.clock.advance(30)  # a fresh time step: the fake refuses a reused code
        return Totp(secret).code_at(self.clock.now())


Case = Callable[[httpx.AsyncClient, World], Awaitable[httpx.Response]]
CASES: dict[str, dict[int, Case]] = {}


def case(operation: str, status: int) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES.setdefault(operation, {})[status] = fn
        return fn

    return register


def u(user: FakeUser | int, *tail: str) -> str:
    uid = user if isinstance(user, int) else user.id
    return f"{P}/users/{uid}" + "".join(f"/{t}" for t in tail)


MISSING = 987654

# ---------------------------------------------------------------- generic errors


def _generic(
    operation: str, method: str, path: Callable[[World], str], *, admin: bool, body: Any = None
) -> None:
    """401 without credentials, 403 for a suspended caller (or a plain user on another user),
    404 for an unknown user id (paths under /users/{id})."""

    @case(operation, 401)
    async def unauthenticated(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.request(method, path(w), json=body)

    @case(operation, 403)
    async def forbidden(c: httpx.AsyncClient, w: World) -> httpx.Response:
        caller = w.plain if admin else w.susp
        return await c.request(method, path(w), json=body, headers=w.key(caller, **{"If-Match": "1"}))


def _missing(operation: str, method: str, path: Callable[[int], str], body: Any = None) -> None:
    @case(operation, 404)
    async def not_found(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.request(method, path(MISSING), json=body, headers=w.admin(**{"If-Match": "1"}))


def _if_match(
    operation: str, method: str, path: Callable[[World], str], body: Any, revision: Callable[[World], int]
) -> None:
    @case(operation, 428)
    async def missing(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.request(method, path(w), json=body, headers=w.admin())

    @case(operation, 412)
    async def stale(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.request(
            method, path(w), json=body, headers=w.admin(**{"If-Match": f'W/"{revision(w) + 5}"'})
        )


# ---------------------------------------------------------------- authentication


def _login(email: str, password: str) -> dict[str, Any]:
    return {"provider": "mysql", "properties": {"email": email, "password": password}}


@case("login", 200)
async def login_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/login", json=_login(w.root.email, "root-password"))


@case("login", 400)
async def login_bad(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/login", json={"provider": "mysql", "properties": {"email": 5}})


@case("login", 401)
async def login_wrong(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/login", json=_login(w.root.email, "nope-nope"))


@case("login", 403)
async def login_suspended(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/login", json=_login(w.susp.email, "susp-password"))


async def _pending(c: httpx.AsyncClient, w: World) -> dict[str, str]:
    first = await c.post(f"{P}/login", json=_login(w.totp.email, "totp-password"))
    assert first.status_code == 200
    return {"Cookie": f"jwt={first.cookies['jwt']}"}


@case("login2FA", 200)
async def login2fa_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    headers = await _pending(c, w)
    return await c.post(f"{P}/login-2fa", json={"token": w.code(w.totp_secret)}, headers=headers)


@case("login2FA", 400)
async def login2fa_bad(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/login-2fa", json={"token": 123456}, headers=await _pending(c, w))


@case("login2FA", 401)
async def login2fa_none(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/login-2fa", json={"token": "123456"})


@case("login2FA", 403)
async def login2fa_suspended(c: httpx.AsyncClient, w: World) -> httpx.Response:
    headers = await _pending(c, w)
    w.totp.suspended = True
    return await c.post(f"{P}/login-2fa", json={"token": w.code(w.totp_secret)}, headers=headers)


@case("login2FA", 404)
async def login2fa_no_secret(c: httpx.AsyncClient, w: World) -> httpx.Response:
    token = w.fake.issue_jwt(w.root, pending=True)
    return await c.post(f"{P}/login-2fa", json={"token": "123456"}, headers={"Cookie": f"jwt={token}"})


@case("logout", 200)
async def logout_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/logout", headers={"Authorization": f"Bearer {w.fake.issue_jwt(w.root)}"})


@case("logout", 401)
async def logout_api_key(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/logout", headers=w.admin())


@case("logout", 403)
async def logout_suspended(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/logout", headers={"Authorization": f"Bearer {w.fake.issue_jwt(w.susp)}"})


@case("getAuthenticationProvider", 200)
async def provider_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.get(f"{P}/authentication-provider", params={"email": w.plain.email}, headers=w.admin())


@case("getAuthenticationProvider", 400)
async def provider_bad(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.get(f"{P}/authentication-provider", params={"email": "not-an-address"}, headers=w.admin())


@case("getAuthenticationProvider", 404)
async def provider_unknown(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.get(
        f"{P}/authentication-provider", params={"email": "nobody@example.test"}, headers=w.admin()
    )


_generic(
    "getAuthenticationProvider", "GET", lambda w: f"{P}/authentication-provider?email=a@b.test", admin=False
)

# ---------------------------------------------------------------- the current user


def _me(operation: str, method: str, tail: str, body: Any = None) -> None:
    _generic(operation, method, lambda w: f"{P}/user{tail}", admin=False, body=body)


_me("getCurrentUser", "GET", "")
_me("getUserApiKey", "GET", "/api-key")
_me("updateUserPassword", "POST", "/actions/change-password", {"newPassword": "another-one-1"})
_me("initiatePasswordReset", "POST", "/actions/initiate-password-reset", {"email": "a@b.test"})
_me("initiateEmailChange", "POST", "/actions/initiate-email-change", {"email": "a@b.test"})
_me("regenerateUserApiKey", "POST", "/actions/regenerate-api-key")
_me("regenerateUserJwtSalt", "POST", "/actions/regenerate-jwt-salt")
_me("generateUser2FASecret", "POST", "/actions/2fa-generate")
_me("enableUser2FA", "POST", "/actions/2fa-enable", {"token": "123456"})
_me("disableUser2FA", "POST", "/actions/2fa-disable")
_me("UserController_handleEmailVerify", "GET", "/actions/verify-email?token=x")
_me("UserController_handleUserResetPassword", "GET", "/actions/reset-password?token=x")


@case("getCurrentUser", 200)
async def me_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.get(f"{P}/user", params={"recursion": "1"}, headers=w.admin())


@case("getUserApiKey", 200)
async def api_key_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.get(f"{P}/user/api-key", headers=w.admin())


@case("updateUserPassword", 200)
async def password_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    body = {"newPassword": "another-one-1", "oldPassword": "root-password"}
    return await c.post(f"{P}/user/actions/change-password", json=body, headers=w.rev(w.root))


@case("updateUserPassword", 400)
async def password_bad(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/user/actions/change-password", json={"newPassword": 7}, headers=w.rev(w.root))


@case("updateUserPassword", 409)
async def password_same(c: httpx.AsyncClient, w: World) -> httpx.Response:
    body = {"newPassword": "root-password"}
    return await c.post(f"{P}/user/actions/change-password", json=body, headers=w.rev(w.root))


_if_match(
    "updateUserPassword",
    "POST",
    lambda w: f"{P}/user/actions/change-password",
    {"newPassword": "another-one-1"},
    lambda w: w.root.revision,
)


@case("initiatePasswordReset", 200)
async def reset_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(
        f"{P}/user/actions/initiate-password-reset", json={"email": w.plain.email}, headers=w.admin()
    )


@case("initiateEmailChange", 200)
async def email_change_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(
        f"{P}/user/actions/initiate-email-change", json={"email": "new@example.test"}, headers=w.admin()
    )


@case("initiateEmailChange", 400)
async def email_change_bad(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/user/actions/initiate-email-change", json={"email": "nope"}, headers=w.admin())


for _op, _tail in (
    ("regenerateUserApiKey", "regenerate-api-key"),
    ("regenerateUserJwtSalt", "regenerate-jwt-salt"),
):

    def _regen(tail: str) -> Case:
        async def ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
            return await c.post(f"{P}/user/actions/{tail}", headers=w.rev(w.root))

        return ok

    case(_op, 200)(_regen(_tail))
    _if_match(_op, "POST", lambda w, t=_tail: f"{P}/user/actions/{t}", None, lambda w: w.root.revision)


@case("generateUser2FASecret", 200)
async def generate_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/user/actions/2fa-generate", headers=w.admin())


async def _generated(c: httpx.AsyncClient, w: World) -> str:
    answer = await c.post(f"{P}/user/actions/2fa-generate", headers=w.admin())
    return str(answer.json()["secret2FA"])


@case("enableUser2FA", 200)
async def enable_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    secret = await _generated(c, w)
    return await c.post(f"{P}/user/actions/2fa-enable", json={"token": w.code(secret)}, headers=w.rev(w.root))


@case("enableUser2FA", 400)
async def enable_wrong(c: httpx.AsyncClient, w: World) -> httpx.Response:
    await _generated(c, w)
    return await c.post(f"{P}/user/actions/2fa-enable", json={"token": "000000"}, headers=w.rev(w.root))


@case("enableUser2FA", 409)
async def enable_twice(c: httpx.AsyncClient, w: World) -> httpx.Response:
    headers = w.key(w.totp, **{"If-Match": str(w.totp.revision)})
    return await c.post(f"{P}/user/actions/2fa-enable", json={"token": "123456"}, headers=headers)


@case("enableUser2FA", 428)
async def enable_no_if_match(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/user/actions/2fa-enable", json={"token": "123456"}, headers=w.admin())


@case("disableUser2FA", 200)
async def disable_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    headers = w.key(w.totp, **{"If-Match": str(w.totp.revision)})
    return await c.post(f"{P}/user/actions/2fa-disable", headers=headers)


@case("disableUser2FA", 409)
async def disable_off(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/user/actions/2fa-disable", headers=w.rev(w.root))


@case("disableUser2FA", 428)
async def disable_no_if_match(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/user/actions/2fa-disable", headers=w.admin())


def _token_action(
    operation: str, action: str, prepare: Callable[[httpx.AsyncClient, World], Awaitable[str]]
) -> None:
    @case(operation, 200)
    async def ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.get(
            f"{P}/user/actions/{action}", params={"token": await prepare(c, w)}, headers=w.admin()
        )

    @case(operation, 400)
    async def bad(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.get(f"{P}/user/actions/{action}", params={"token": "forged"}, headers=w.admin())

    @case(operation, 409)
    async def reused(c: httpx.AsyncClient, w: World) -> httpx.Response:
        token = await prepare(c, w)
        await c.get(f"{P}/user/actions/{action}", params={"token": token}, headers=w.admin())
        return await c.get(f"{P}/user/actions/{action}", params={"token": token}, headers=w.admin())


async def _email_token(c: httpx.AsyncClient, w: World) -> str:
    await c.post(
        f"{P}/user/actions/initiate-email-change", json={"email": "new@example.test"}, headers=w.admin()
    )
    return w.fake.outbox[-1].token


async def _reset_token(c: httpx.AsyncClient, w: World) -> str:
    await c.post(
        f"{P}/user/actions/initiate-password-reset", json={"email": w.plain.email}, headers=w.admin()
    )
    return w.fake.outbox[-1].token


_token_action("UserController_handleEmailVerify", "verify-email", _email_token)
_token_action("UserController_handleUserResetPassword", "reset-password", _reset_token)

# ---------------------------------------------------------------- users


@case("getUsers", 200)
async def users_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.get(f"{P}/users", params={"limit": "2", "filter.archived": "$eq:0"}, headers=w.admin())


_generic("getUsers", "GET", lambda w: f"{P}/users", admin=True)

_NEW = {
    "displayName": "New One",
    "email": "new.one@example.test",
    "accessLevel": "user",
    "password": "a-password-1",
}


@case("createUserAuthorized", 201)
async def create_ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/users", json={**_NEW, "accountId": 101}, headers=w.admin())


@case("createUserAuthorized", 400)
async def create_bad(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/users", json={"displayName": 3, "email": "x"}, headers=w.admin())


@case("createUserAuthorized", 404)
async def create_unknown_account(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/users", json={**_NEW, "accountId": 555}, headers=w.admin())


@case("createUserAuthorized", 409)
async def create_duplicate(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(f"{P}/users", json={**_NEW, "email": "PLAIN@example.test"}, headers=w.admin())


_generic("createUserAuthorized", "POST", lambda w: f"{P}/users", admin=True, body=_NEW)


def _user_read(operation: str, *tail: str) -> None:
    @case(operation, 200)
    async def ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.get(u(w.target, *tail), headers=w.admin())

    _generic(operation, "GET", lambda w: u(w.target, *tail), admin=True)
    _missing(operation, "GET", lambda uid: u(uid, *tail))


_user_read("getUser")
_user_read("getUserConfiguration", "config")
_user_read("getUserSuspendReasons", "suspend-reasons")
_user_read("getUserLimits", "limits")
_user_read("getDisabledUserLimits", "disabled-limits")
_user_read("getDefaultUserLimits", "default-limits")
_user_read("getUserParentDelegates", "parent-delegates")
_user_read("getUserChildDelegates", "child-delegates")
_user_read("getUserPermissions", "permissions")
_user_read("getUserSshKeys", "ssh-keys")


def _user_write(
    operation: str,
    method: str,
    tail: tuple[str, ...],
    body: Any,
    *,
    revision: Callable[[World], int] | None,
    bad: Any = None,
    conflict: Callable[[httpx.AsyncClient, World], Awaitable[httpx.Response]] | None = None,
    prepare: Callable[[httpx.AsyncClient, World], Awaitable[None]] | None = None,
    success: int = 200,
) -> None:
    def headers(w: World) -> dict[str, str]:
        return w.admin(**({"If-Match": str(revision(w))} if revision is not None else {}))

    @case(operation, success)
    async def ok(c: httpx.AsyncClient, w: World) -> httpx.Response:
        if prepare is not None:
            await prepare(c, w)
        return await c.request(method, u(w.target, *tail), json=body, headers=headers(w))

    if bad is not None:

        @case(operation, 400)
        async def invalid(c: httpx.AsyncClient, w: World) -> httpx.Response:
            return await c.request(method, u(w.target, *tail), json=bad, headers=headers(w))

    if conflict is not None:
        case(operation, 409)(conflict)
    _generic(operation, method, lambda w: u(w.target, *tail), admin=True, body=body)
    _missing(operation, method, lambda uid: u(uid, *tail), body)
    if revision is not None:
        _if_match(operation, method, lambda w: u(w.target, *tail), body, revision)


async def _conflict_config(c: httpx.AsyncClient, w: World) -> httpx.Response:
    w.fake.force_reenrolment(w.target.id)
    headers = w.admin(**{"If-Match": str(w.target.revision)})
    return await c.patch(u(w.target, "config"), json={"authenticatorMustChange": True}, headers=headers)


_user_write(
    "updateUserConfig",
    "PATCH",
    ("config",),
    {"authenticatorMustChange": True, "displayName": "Renamed", "language": "ro"},
    revision=lambda w: w.target.revision,
    bad={"language": "fr", "isBlocked": "yes"},
    conflict=_conflict_config,
)


@case("updateUserMeta", 412)
async def meta_stale(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.patch(
        u(w.target, "meta"), json={"guiSettings": {"rowIndex": 1}}, headers=w.admin(**{"If-Match": "99"})
    )


_user_write(
    "updateUserMeta",
    "PATCH",
    ("meta",),
    {"guiSettings": {"rowIndex": 2, "showWidgetChildren": True}},
    revision=None,
    bad={"guiSettings": {"rowIndex": "two"}},
)


async def _conflict_account(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(
        u(w.target, "actions", "change-account"), json={"newAccountId": 101}, headers=w.rev(w.target)
    )


_user_write(
    "changeUserAccount",
    "POST",
    ("actions", "change-account"),
    {"newAccountId": 102},
    revision=lambda w: w.target.revision,
    bad={"newAccountId": "102"},
    conflict=_conflict_account,
)


async def _archived(c: httpx.AsyncClient, w: World) -> None:
    w.target.archived = True


async def _conflict_archive(c: httpx.AsyncClient, w: World) -> httpx.Response:
    await _archived(c, w)
    return await c.post(u(w.target, "actions", "archive"), headers=w.rev(w.target))


async def _conflict_unarchive(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(u(w.target, "actions", "unarchive"), headers=w.rev(w.target))


_user_write(
    "archiveUser",
    "POST",
    ("actions", "archive"),
    None,
    revision=lambda w: w.target.revision,
    conflict=_conflict_archive,
)
_user_write(
    "unarchiveUser",
    "POST",
    ("actions", "unarchive"),
    None,
    revision=lambda w: w.target.revision,
    conflict=_conflict_unarchive,
    prepare=_archived,
)


async def _conflict_resend(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(u(w.root, "actions", "resend-email-verification"), json={}, headers=w.admin())


_user_write(
    "resendEmailVerification",
    "POST",
    ("actions", "resend-email-verification"),
    {"redirectUrl": "https://app.example.test/verified"},
    revision=None,
    bad={"redirectUrl": "ftp://nowhere"},
    conflict=_conflict_resend,
)


async def _conflict_limits(c: httpx.AsyncClient, w: World) -> httpx.Response:
    body = {"infrastructureActiveMaxCount": 10}  # the default already
    return await c.patch(u(w.target, "actions", "change-limits"), json=body, headers=w.rev(w.target))


_user_write(
    "updateUserLimits",
    "PATCH",
    ("actions", "change-limits"),
    {"infrastructureActiveMaxCount": 3, "storageTypes": ["iscsi_ssd"]},
    revision=lambda w: w.target.revision,
    conflict=_conflict_limits,
)


async def _conflict_suspend(c: httpx.AsyncClient, w: World) -> httpx.Response:
    w.target.suspended = True
    body = {"suspendReason": "custom", "suspendReasonPublicComment": "again"}
    return await c.post(u(w.target, "actions", "suspend"), json=body, headers=w.rev(w.target))


_user_write(
    "suspendUser",
    "POST",
    ("actions", "suspend"),
    {"suspendReason": "custom", "suspendReasonPublicComment": "audit"},
    revision=lambda w: w.target.revision,
    conflict=_conflict_suspend,
)


async def _suspended(c: httpx.AsyncClient, w: World) -> None:
    w.target.suspended = True


async def _conflict_unsuspend(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(u(w.target, "actions", "unsuspend"), headers=w.rev(w.target))


_user_write(
    "unsuspendUser",
    "POST",
    ("actions", "unsuspend"),
    None,
    revision=lambda w: w.target.revision,
    conflict=_conflict_unsuspend,
    prepare=_suspended,
)


async def _conflict_permissions(c: httpx.AsyncClient, w: World) -> httpx.Response:
    body = {"specialPermissions": {}}
    return await c.post(
        u(w.target, "actions", "change-resource-permissions"), json=body, headers=w.rev(w.target)
    )


_user_write(
    "updateUserPermissions",
    "POST",
    ("actions", "change-resource-permissions"),
    {
        "adminPasswordRevealPermissions": {"server": True, "storage_pool": True},
        "specialPermissions": {"create_verified_user": True},
    },
    revision=lambda w: w.target.revision,
    bad={"adminPasswordRevealPermissions": {"server": "yes"}},
    conflict=_conflict_permissions,
)


async def _conflict_key(c: httpx.AsyncClient, w: World) -> httpx.Response:
    await c.post(u(w.target, "ssh-keys"), json={"sshKey": SSH_KEY}, headers=w.admin())
    other_comment = SSH_KEY.rsplit(" ", 1)[0] + " same-key@elsewhere"
    return await c.post(u(w.target, "ssh-keys"), json={"sshKey": other_comment}, headers=w.admin())


_user_write(
    "addUserSshKey",
    "POST",
    ("ssh-keys",),
    {"sshKey": SSH_KEY},
    revision=None,
    bad={"sshKey": "not a key"},
    conflict=_conflict_key,
    success=201,
)


# ---------------------------------------------------------------- delegates


def _delegate(operation: str, action: str) -> None:
    def path(w: World) -> str:
        return u(w.target, "actions", action, str(w.plain.id))

    @case(operation, 400)
    async def to_self(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.post(u(w.target, "actions", action, str(w.target.id)), headers=w.admin())

    @case(operation, 404)
    async def unknown_delegate(c: httpx.AsyncClient, w: World) -> httpx.Response:
        return await c.post(u(w.target, "actions", action, str(MISSING)), headers=w.admin())

    _generic(operation, "POST", path, admin=True)


@case("addUserDelegate", 200)
async def delegate_add(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.post(u(w.target, "actions", "add-delegate", str(w.plain.id)), headers=w.admin())


@case("addUserDelegate", 409)
async def delegate_twice(c: httpx.AsyncClient, w: World) -> httpx.Response:
    await delegate_add(c, w)
    return await delegate_add(c, w)


@case("removeUserDelegate", 200)
async def delegate_remove(c: httpx.AsyncClient, w: World) -> httpx.Response:
    await delegate_add(c, w)
    return await c.post(u(w.target, "actions", "remove-delegate", str(w.plain.id)), headers=w.admin())


_delegate("addUserDelegate", "add-delegate")
_delegate("removeUserDelegate", "remove-delegate")

# ---------------------------------------------------------------- one SSH key


async def _key_id(c: httpx.AsyncClient, w: World) -> int:
    answer = await c.post(u(w.target, "ssh-keys"), json={"sshKey": OTHER_KEY}, headers=w.admin())
    return int(answer.json()["id"])


@case("getUserSshKey", 200)
async def key_get(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.get(u(w.target, "ssh-keys", str(await _key_id(c, w))), headers=w.admin())


@case("deleteUserSshKey", 204)
async def key_delete(c: httpx.AsyncClient, w: World) -> httpx.Response:
    return await c.delete(u(w.target, "ssh-keys", str(await _key_id(c, w))), headers=w.admin())


for _op, _method in (("getUserSshKey", "GET"), ("deleteUserSshKey", "DELETE")):
    _generic(_op, _method, lambda w: u(w.target, "ssh-keys", "1"), admin=True)

    def _key_missing(method: str) -> Case:
        async def missing(c: httpx.AsyncClient, w: World) -> httpx.Response:
            if method == "DELETE":
                key = await _key_id(c, w)
                await c.delete(u(w.target, "ssh-keys", str(key)), headers=w.admin())
                return await c.delete(u(w.target, "ssh-keys", str(key)), headers=w.admin())  # deleted already
            return await c.get(u(w.target, "ssh-keys", str(MISSING)), headers=w.admin())

        return missing

    case(_op, 404)(_key_missing(_method))


# ---------------------------------------------------------------- coverage

#: (operation, status) pairs the spec documents that the fake cannot produce, and why.
UNREACHABLE: dict[tuple[str, int], str] = {
    **{
        (
            op,
            404,
        ): "the caller of a /user/... operation is an existing user (a removed user's credential is a 401)"
        for op in (
            "getCurrentUser",
            "updateUserPassword",
            "initiateEmailChange",
            "getUserApiKey",
            "regenerateUserApiKey",
            "regenerateUserJwtSalt",
            "generateUser2FASecret",
            "enableUser2FA",
            "disableUser2FA",
            "UserController_handleEmailVerify",
            "UserController_handleUserResetPassword",
        )
    },
    ("generateUser2FASecret", 400): "a body-less call with nothing to refuse",
    ("disableUser2FA", 400): "a body-less call with nothing to refuse",
    ("UserController_handleEmailVerify", 428): "a GET that declares no If-Match",
    ("UserController_handleUserResetPassword", 428): "a GET that declares no If-Match",
    ("updateUserMeta", 428): "declares no If-Match: the fake compares one when sent but does not require it",
}


def spec_statuses() -> dict[str, set[int]]:
    doc = yaml.safe_load((SPECS / "metalcloud-v2.yaml").read_text())
    out: dict[str, set[int]] = {}
    for item in doc["paths"].values():
        for method, op in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                out[op["operationId"]] = {int(s) for s in op["responses"]}
    return out


def declared_headers() -> dict[tuple[str, int], set[str]]:
    """(operation, status) -> the response headers the spec declares for that answer."""
    doc = yaml.safe_load((SPECS / "metalcloud-v2.yaml").read_text())
    out: dict[tuple[str, int], set[str]] = {}
    for item in doc["paths"].values():
        for method, op in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                for status, answer in op["responses"].items():
                    if answer.get("headers"):
                        out[(op["operationId"], int(status))] = {h.lower() for h in answer["headers"]}
    return out


def test_every_documented_status_has_a_case() -> None:
    documented = spec_statuses()
    assert len(documented) == 43
    missing = sorted(
        (op, status)
        for op, statuses in documented.items()
        for status in statuses
        if status not in CASES.get(op, {}) and (op, status) not in UNREACHABLE
    )
    assert missing == []
    extra = sorted(
        (op, s) for op, cases in CASES.items() for s in cases if s not in documented.get(op, set())
    )
    assert extra == []


@pytest.fixture(scope="module")
def socket_server() -> Iterator[tuple[SwappableApp, str]]:
    swap = SwappableApp()
    with serve(swap) as handle:
        yield swap, handle.base_url


@pytest.mark.parametrize("mode", ["inprocess", "socket"])
async def test_each_case_answers_its_status_within_the_spec(
    mode: str, socket_server: tuple[SwappableApp, str]
) -> None:
    failures: list[str] = []
    violations: list[str] = []
    total = 0
    headers = declared_headers()
    pool = httpx.AsyncHTTPTransport()  # one connection pool for every socket case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakSecretWarning)
        for operation, cases in sorted(CASES.items()):
            for status, run in sorted(cases.items()):
                world = World(FakeClock(1_750_000_000.0))
                if mode == "inprocess":
                    inner: httpx.AsyncBaseTransport = httpx.ASGITransport(world.fake)
                    base = "http://metalcloud.localhost"
                else:
                    swap, base = socket_server
                    swap.app = world.fake
                    inner = _KeepOpen(pool)
                # A 400 or 401 case sends a request the spec forbids on purpose: only its answer
                # is held to the spec.
                transport = ValidatingTransport(
                    inner, "metalcloud-v2.yaml", check_requests=status not in (400, 401)
                )
                async with httpx.AsyncClient(transport=transport, base_url=base, timeout=10) as client:
                    response = await run(client, world)
                total += 1
                if response.status_code != status:
                    failures.append(f"{operation} {status}: got {response.status_code} {response.text[:200]}")
                # The spec declares headers (ETag, Location) optional; the real server sends them,
                # and the official clients read them (an ETag goes back verbatim as If-Match).
                missing = headers.get((operation, status), set()) - set(response.headers)
                if missing:
                    failures.append(f"{operation} {status}: no {', '.join(sorted(missing))} header")
                if status >= 400:
                    body = response.json()
                    if body.get("statusCode") != status or "message" not in body:
                        failures.append(f"{operation} {status}: not a NestJS error body: {body}")
                violations += spec_violations(transport)
    await pool.aclose()
    assert failures == []
    assert violations == []
    assert total > 200


class _KeepOpen(httpx.AsyncBaseTransport):
    """Shares one pool between the cases' clients (closing a client leaves it open)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)
