"""The administration calls of the MetalCloud SDK against the fake (in-process and over a loopback
socket, every exchange validated against the spec), plus the SDK's reading of answer variants
from a MockTransport: If-Match per operation, separate configuration revisions, forced 2FA
re-enrolment, login lockout and ``passwordChangeRequired``."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from metalcloud_async import (
    AccountLockedError,
    AdminPasswordRevealPermissions,
    DelegateAlreadyAddedError,
    EmailAlreadyInUseError,
    EmailAlreadyVerifiedError,
    GenericGUISettings,
    MetalCloudClient,
    ReenrolmentAlreadyPendingError,
    SpecialPermissions,
    SshKeyAlreadyPresentError,
    SshKeyStatus,
    TwoFactorEnrolmentRequiredError,
    UpdateUser,
    UserLimits,
)
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from mfa_common.testing import serve
from mfa_common.totp import Totp
from tests.contract import ValidatingTransport

from .conftest import ADMIN_EMAIL, TOTP_EMAIL, TOTP_PASSWORD
from .test_metalcloud_contract import spec_violations

pytestmark = pytest.mark.anyio

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVsbG8td29ybGQtZXhhbXBsZS1rZXktYnl0ZXM= alice@laptop"


@pytest.fixture(params=["inprocess", "socket"])
def checked(request: pytest.FixtureRequest, fake: MetalCloudFake) -> Any:
    """(client kwargs, validating transport) reaching the fake in-process or over a socket."""
    if request.param == "inprocess":
        transport = ValidatingTransport(httpx.ASGITransport(fake), "metalcloud-v2.yaml")
        yield {"base_url": "http://metalcloud.localhost", "transport": transport}, transport
    else:
        with serve(fake) as server:
            transport = ValidatingTransport(httpx.AsyncHTTPTransport(), "metalcloud-v2.yaml")
            yield {"base_url": server.base_url, "transport": transport}, transport


def admin(fake: MetalCloudFake, kw: dict[str, Any], **extra: Any) -> MetalCloudClient:
    return MetalCloudClient(api_key=fake.user(ADMIN_EMAIL).api_key, **kw, **extra)


async def test_every_admin_call_through_the_sdk(fake: MetalCloudFake, checked: Any, clock: FakeClock) -> None:
    kw, transport = checked
    fake.user(ADMIN_EMAIL).account_id = 101
    async with admin(fake, kw, clock=clock) as client:
        created = await client.users.create(
            "new.person@example.test", display_name="New Person", password="a-password-1", account_id=101
        )
        assert created.email == "new.person@example.test" and created.account_id == 101
        assert (
            isinstance(created.created_timestamp, datetime) and created.created_timestamp.tzinfo is not None
        )
        with pytest.raises(EmailAlreadyInUseError):
            await client.users.create("NEW.person@example.test", display_name="Again")
        with pytest.raises(NotFoundError):
            await client.users.create("other@example.test", display_name="X", account_id=999)
        found = await client.users.find_by_email("new.person@example.test")
        assert found is not None and found.id == created.id
        assert await client.users.find_by_email("nobody@example.test") is None
        uid = created.id

        config = await client.users.get_config(uid)
        assert config.revision == 1 and not config.authenticator_must_change
        config = await client.users.update_config(uid, UpdateUser(display_name="Renamed", language="ro"))
        assert config.revision == 2 and config.display_name == "Renamed"
        assert (await client.users.get(uid)).display_name == "Renamed"
        config = await client.users.force_2fa_reenrolment(uid)
        assert config.authenticator_must_change and config.revision == 3
        with pytest.raises(ReenrolmentAlreadyPendingError):
            await client.users.force_2fa_reenrolment(uid)

        meta = await client.users.update_meta(uid, GenericGUISettings(row_index=2, random_instance_id="abc"))
        assert meta.gui_settings is not None and meta.gui_settings.random_instance_id == "abc"

        fake.add_user("other@example.test", "pw-other-1", account_id=102)
        moved = await client.users.change_account(uid, 102)
        assert moved.account_id == 102
        with pytest.raises(NotFoundError):
            await client.users.change_account(uid, 777)

        unverified = fake.add_user("unverified@example.test", "pw-unver-1", email_verified=False)
        await client.users.resend_email_verification(
            unverified.id, redirect_url="https://app.example.test/ok"
        )
        assert fake.outbox[-1].to == "unverified@example.test"
        with pytest.raises(EmailAlreadyVerifiedError):
            await client.users.resend_email_verification(fake.user(ADMIN_EMAIL).id)

        await client.users.suspend(uid, public_comment="audit")
        await client.users.unsuspend(uid)
        reasons = [r async for r in client.users.suspend_reasons(uid)]
        assert [r.public_comment for r in reasons] == ["audit"] and reasons[0].end_timestamp is not None

        limits = await client.users.limits.get(uid)
        assert limits.infrastructure_active_max_count == 10
        defaults = await client.users.limits.default(uid)
        assert defaults == limits
        disabled = await client.users.limits.disabled(uid)
        assert disabled.infrastructure_san_max_count
        changed = await client.users.limits.set(uid, UserLimits(infrastructure_active_max_count=3))
        assert changed.infrastructure_active_max_count == 3 and changed.drive_max_size_mbytes == 1_048_576

        other = fake.user("other@example.test").id
        after = await client.users.delegates.add(uid, other)
        assert after.child_delegates == ["other@example.test"]
        with pytest.raises(DelegateAlreadyAddedError):
            await client.users.delegates.add(uid, other)
        assert [d.id async for d in client.users.delegates.children(uid)] == [other]
        assert [d.id async for d in client.users.delegates.parents(other)] == [uid]
        await client.users.delegates.remove(uid, other)
        with pytest.raises(NotFoundError):
            await client.users.delegates.remove(uid, other)
        with pytest.raises(BadRequestError):
            await client.users.delegates.add(uid, uid)

        perms = await client.users.permissions.get(uid)
        assert perms.role_permissions == ["user"]
        perms = await client.users.permissions.change(
            uid,
            admin_password_reveal=AdminPasswordRevealPermissions(server=True, storage_pool=True),
            special=SpecialPermissions(create_verified_user=True),
        )
        assert perms.admin_password_reveal_permissions is not None
        assert perms.admin_password_reveal_permissions.storage_pool is True
        assert perms.special_permissions is not None and perms.special_permissions.create_verified_user

        key = await client.users.ssh_keys.add(uid, SSH_KEY)
        assert key.status == SshKeyStatus.ACTIVE and key.user_id == uid
        with pytest.raises(SshKeyAlreadyPresentError):
            await client.users.ssh_keys.add(uid, SSH_KEY.replace("alice@laptop", "same key"))
        assert [k.id async for k in client.users.ssh_keys.list(uid)] == [key.id]
        assert (await client.users.ssh_keys.get(uid, key.id)).ssh_key == SSH_KEY
        assert (await client.users.ssh_keys.find(uid, SSH_KEY)) == key
        await client.users.ssh_keys.delete(uid, key.id)
        with pytest.raises(NotFoundError):
            await client.users.ssh_keys.get(uid, key.id)
        assert [k async for k in client.users.ssh_keys.list(uid)] == []

        provider = await client.session.provider("new.person@example.test")
        assert provider.provider is not None and provider.provider.value == "mysql"
        with pytest.raises(NotFoundError):
            await client.session.provider("nobody@example.test")
    assert spec_violations(transport) == []
    assert transport.checked > 40
    operations = {e.operation for e in fake.ledger.entries()}
    assert {"create-user", "update-config", "change-limits", "add-ssh-key", "delete-ssh-key"} <= operations


async def test_non_admin_gets_permission_denied(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    plain = fake.add_user("plain@example.test", "plain-password-1")
    other = fake.user(ADMIN_EMAIL).id
    async with MetalCloudClient(api_key=plain.api_key, **local) as client:
        with pytest.raises(PermissionDeniedError):
            await client.users.create("x@example.test", display_name="X")
        with pytest.raises(PermissionDeniedError):
            await client.users.limits.get(other)
        with pytest.raises(PermissionDeniedError):
            await client.users.force_2fa_reenrolment(plain.id)
        # A user manages its own SSH keys.
        key = await client.users.ssh_keys.add(plain.id, SSH_KEY)
        assert key.user_id == plain.id


# ------------------------------------------------------------------ If-Match


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await self.inner.handle_async_request(request)


async def test_each_if_match_operation_sends_the_revision_it_read(
    fake: MetalCloudFake, clock: FakeClock
) -> None:
    target = fake.add_user("target@example.test", "target-password", account_id=101)
    fake.add_user("other@example.test", "other-password", account_id=102)
    recorder = Recorder(httpx.ASGITransport(fake))
    async with MetalCloudClient(
        "http://metalcloud.localhost", api_key=fake.user(ADMIN_EMAIL).api_key, transport=recorder
    ) as client:
        target.revision = 7
        calls = [
            (
                "PATCH",
                "/config",
                lambda: client.users.update_config(target.id, UpdateUser(is_billable=False)),
                "7",
            ),
            ("POST", "/actions/change-account", lambda: client.users.change_account(target.id, 102), "8"),
            (
                "PATCH",
                "/actions/change-limits",
                lambda: client.users.limits.set(target.id, UserLimits(user_ssh_keys_count_max=4)),
                "9",
            ),
            (
                "POST",
                "/actions/change-resource-permissions",
                lambda: client.users.permissions.change(
                    target.id, special=SpecialPermissions(create_verified_user=True)
                ),
                "10",
            ),
        ]
        for method, tail, call, expected in calls:
            recorder.sent.clear()
            await call()
            write = [r for r in recorder.sent if r.method == method]
            assert [r.headers.get("if-match") for r in write] == [expected], tail
            assert write[0].url.path == f"/api/v2/users/{target.id}{tail}"
        # One revision for the user and its configuration: each write moved it once.
        assert target.revision == 11


async def test_stale_and_missing_revisions_per_operation(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    target = fake.add_user("target@example.test", "target-password", account_id=101)
    fake.add_user("other@example.test", "other-password", account_id=102)
    async with admin(fake, local) as client:
        target.revision = 2
        writes = {
            "config": lambda rev: client.users.update_config(
                target.id, UpdateUser(is_billable=False), revision=rev
            ),
            "account": lambda rev: client.users.change_account(target.id, 102, revision=rev),
            "limits": lambda rev: client.users.limits.set(
                target.id, UserLimits(user_ssh_keys_count_max=4), revision=rev
            ),
            "permissions": lambda rev: client.users.permissions.change(
                target.id, special=SpecialPermissions(create_verified_user=True), revision=rev
            ),
        }
        for name, write in writes.items():
            with pytest.raises(PreconditionRequiredError):
                await write(None)
            with pytest.raises(PreconditionFailedError):
                await write(99)
            assert fake.ledger.entries() == [], name
        # ETags in any of the accepted forms name the current revision.
        config = await client.users.update_config(target.id, UpdateUser(is_billable=False), revision='W/"2"')
        assert config.revision == 3
        await client.users.change_account(target.id, 102, revision='"3"')
        # retry_on_stale: one re-read and resend.
        target.revision = 11
        config = await client.users.update_config(
            target.id, UpdateUser(is_billable=True), revision=3, retry_on_stale=True
        )
        assert config.revision == 12


async def test_fake_emits_bare_etags_and_accepts_quoted_and_weak(
    fake: MetalCloudFake, local: dict[str, Any]
) -> None:
    target = fake.add_user("target@example.test", "target-password")
    key = {"Authorization": f"Bearer {fake.user(ADMIN_EMAIL).api_key}"}
    async with httpx.AsyncClient(**local) as raw:
        got = await raw.get(f"/api/v2/users/{target.id}/config", headers=key)
        assert got.headers["etag"] == "1" and got.json()["revision"] == 1
        user = await raw.get(f"/api/v2/users/{target.id}", headers=key)
        assert user.headers["etag"] == str(target.revision)
        for form in ("1", '"2"', 'W/"3"'):
            answer = await raw.patch(
                f"/api/v2/users/{target.id}/config",
                json={"isTestAccount": True},
                headers={**key, "If-Match": form},
            )
            assert answer.status_code == 200, form
        # A configuration write moves the user's revision: they are one.
        assert target.revision == 4
        answer = await raw.get("/api/v2/user/api-key", headers=key)
        assert answer.status_code == 200 and answer.json()["apiKey"] == fake.user(ADMIN_EMAIL).api_key


async def test_meta_sends_if_match_only_when_given(fake: MetalCloudFake, clock: FakeClock) -> None:
    target = fake.add_user("target@example.test", "target-password")
    recorder = Recorder(httpx.ASGITransport(fake))
    async with MetalCloudClient(
        "http://metalcloud.localhost", api_key=fake.user(ADMIN_EMAIL).api_key, transport=recorder
    ) as client:
        await client.users.update_meta(target.id, GenericGUISettings(row_index=1))
        with pytest.raises(PreconditionFailedError):
            await client.users.update_meta(target.id, GenericGUISettings(row_index=1), revision=99)
        await client.users.update_meta(
            target.id, GenericGUISettings(column_index=4), revision=target.revision
        )
    assert [r.headers.get("if-match") for r in recorder.sent] == [None, "99", "2"]
    assert target.meta == {"guiSettings": {"rowIndex": 1, "columnIndex": 4}}


# ------------------------------------------------------------------ forced re-enrolment


async def test_forced_reenrolment_end_to_end(
    fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock
) -> None:
    user = fake.user(TOTP_EMAIL)
    old_secret = user.totp_secret
    async with admin(fake, endpoint) as root:
        await root.users.force_2fa_reenrolment(user.id)
    # The user's client logs in: the password is right, but the old authenticator is refused
    # and a typed error carries the enrolment-only session.
    async with MetalCloudClient(
        email=TOTP_EMAIL, password=TOTP_PASSWORD, totp_secret=old_secret, clock=clock, **endpoint
    ) as client:
        with pytest.raises(TwoFactorEnrolmentRequiredError) as caught:
            await client.user.get()
        step = caught.value.step
        assert step.enrolment_required and not step.mfa_required
        # The enrolment-only session opens nothing else.
        async with httpx.AsyncClient(**endpoint) as raw:
            headers = {"Authorization": f"Bearer {step.token.reveal()}"}
            assert (await raw.get("/api/v2/users", headers=headers)).status_code == 403
            assert (await raw.get("/api/v2/user/api-key", headers=headers)).status_code == 403
        assert fake.counts["login"] == 0
        secret = await client.session.complete_reenrolment(caught.value)
        assert secret.secret_2fa.reveal() != old_secret
        assert user.totp_secret == secret.secret_2fa.reveal() and not user.authenticator_must_change
        # The client adopted the new secret: its next request logs in with login-2fa.
        me = await client.user.get()
        assert me.email == TOTP_EMAIL and not me.authenticator_must_change
        assert fake.counts["login"] == 1
    # The old authenticator is dead.
    async with MetalCloudClient(
        email=TOTP_EMAIL, password=TOTP_PASSWORD, totp_secret=old_secret, clock=clock, **endpoint
    ) as stale:
        with pytest.raises(AuthenticationError):
            await stale.user.get()


async def test_reenrolment_with_a_raw_login_and_a_person_typing_the_code(
    fake: MetalCloudFake, local: dict[str, Any], clock: FakeClock
) -> None:
    user = fake.force_reenrolment(TOTP_EMAIL)
    async with MetalCloudClient(api_key=fake.user(ADMIN_EMAIL).api_key, clock=clock, **local) as client:
        step = await client.session.login(TOTP_EMAIL, TOTP_PASSWORD)
        assert step.enrolment_required
        shown: list[str] = []

        async def person(secret: Any) -> str:
            shown.append(secret.qr_mime_type)
            clock.advance(30)
            return Totp(secret.secret_2fa).code_at(clock.now())

        secret = await client.session.complete_reenrolment(step, person)
        assert shown == ["image/png"] and user.totp_secret == secret.secret_2fa.reveal()
        assert fake.ledger.entries("2fa-enable")[-1].key == str(user.id)
        # The enrolment session ended with the enrolment.
        async with httpx.AsyncClient(**local) as raw:
            headers = {"Authorization": f"Bearer {step.token.reveal()}"}
            assert (await raw.get("/api/v2/user", headers=headers)).status_code == 401
        # The next raw login goes through the second factor again.
        assert (await client.session.login(TOTP_EMAIL, TOTP_PASSWORD)).mfa_required


# ------------------------------------------------------------------ lockout and password change


async def test_login_lockout_after_five_failures(
    fake: MetalCloudFake, local: dict[str, Any], clock: FakeClock
) -> None:
    async with MetalCloudClient(api_key=fake.user(ADMIN_EMAIL).api_key, clock=clock, **local) as client:
        for _ in range(5):
            with pytest.raises(AuthenticationError):
                await client.session.login(TOTP_EMAIL, "wrong-password")
        with pytest.raises(AccountLockedError) as caught:
            await client.session.login(TOTP_EMAIL, TOTP_PASSWORD)
        assert caught.value.status_code == 403 and fake.counts["lockout"] == 1
        clock.advance(301)
        assert (await client.session.login(TOTP_EMAIL, TOTP_PASSWORD)).mfa_required


async def test_lockout_is_configurable(clock: FakeClock) -> None:
    fake = MetalCloudFake(clock=clock, max_failed_logins=2, failed_login_window=60)
    fake.add_user("a@example.test", "right-password")
    async with MetalCloudClient(
        "http://metalcloud.localhost",
        email="a@example.test",
        password="wrong",
        transport=httpx.ASGITransport(fake),
    ) as client:
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                await client.user.get()
        with pytest.raises(AccountLockedError):
            await client.user.get()
    clock.advance(61)
    async with MetalCloudClient(
        "http://metalcloud.localhost",
        email="a@example.test",
        password="right-password",
        transport=httpx.ASGITransport(fake),
    ) as client:
        assert (await client.user.get()).email == "a@example.test"


async def test_password_change_required_is_surfaced(
    fake: MetalCloudFake, local: dict[str, Any], clock: FakeClock
) -> None:
    async with admin(fake, local) as root:
        created = await root.users.create(
            "temp@example.test", display_name="Temp", password="temp-password-1"
        )
        await root.users.update_config(created.id, UpdateUser(password_change_required=True))
    told: list[str] = []
    async with MetalCloudClient(
        email="temp@example.test", password="temp-password-1", clock=clock, **local
    ) as client:
        assert client.session.password_change_required is None
        backend = client.auth
        assert backend is not None
        backend.on_password_change_required = lambda user: told.append(user.email)  # type: ignore[attr-defined]
        session = await client.session.login()
        assert client.session.password_change_required is True
        assert session.user is not None and session.user.password_change_required
        assert told == ["temp@example.test"]
        await client.user.change_password("a-brand-new-password", old_password="temp-password-1")
        await client.session.login()
        assert client.session.password_change_required is False


# ------------------------------------------------------------------ answer variants


def _mock(handler: Any) -> dict[str, Any]:
    return {"base_url": "http://metalcloud.localhost", "transport": httpx.MockTransport(handler)}


async def test_variants_unknown_fields_enums_and_timestamps() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ssh-keys"):
            return httpx.Response(
                200,
                json={
                    "data": [
                        {
                            "id": 1,
                            "userId": 4,
                            "sshKey": SSH_KEY,
                            "status": "revoked",
                            "createdTimestamp": "2024-05-01 10:00:00",
                            "fingerprint": "x",
                        },
                        {
                            "id": 2.0,
                            "userId": "4",
                            "sshKey": SSH_KEY,
                            "status": "active",
                            "createdTimestamp": 1714557600000,
                        },
                    ],
                    "links": [],
                    "extra": True,
                },
            )
        return httpx.Response(
            200,
            json={
                "revision": 9,
                "displayName": "X",
                "authenticatorMustChange": True,
                "authenticatorCreatedTimestamp": "2024-05-01T12:00:00+02:00",
                "lastLoginTimestamp": "",
                "experimentalTags": ["quantum"],
                "provider": "oidc",
                "brandNew": {"a": 1},
            },
        )

    async with MetalCloudClient(api_key="4:abc", **_mock(handler)) as client:
        keys = [k async for k in client.users.ssh_keys.list(4)]
        assert keys[0].status == "revoked" and keys[1].status == SshKeyStatus.ACTIVE
        stamp = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
        assert keys[0].created_timestamp == stamp and keys[1].created_timestamp == stamp
        config = await client.users.get_config(4)
        assert config.authenticator_created_timestamp == stamp
        assert config.last_login_timestamp is None and config.provider == "oidc"


async def test_lockout_variants_are_typed() -> None:
    for status in (401, 403, 429):

        def handler(request: httpx.Request, status: int = status) -> httpx.Response:
            return httpx.Response(
                status, json={"statusCode": status, "message": "Too many failed login attempts"}
            )

        async with MetalCloudClient(api_key="1:x", **_mock(handler)) as client:
            with pytest.raises(AccountLockedError):
                await client.session.login("a@example.test", "pw")


async def test_password_change_required_from_a_mock_login() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/login":
            body = {"id": 3, "email": "a@example.test", "passwordChangeRequired": True, "revision": 1}
            return httpx.Response(200, json=body, headers={"Set-Cookie": "jwt=a.b.c; Path=/"})
        return httpx.Response(200, json={"id": 3, "revision": 1})

    async with MetalCloudClient(email="a@example.test", password="pw", **_mock(handler)) as client:
        step = await client.session.login("a@example.test", "pw")
        assert step.password_change_required and not step.enrolment_required


async def test_user_repr_does_not_repeat_the_config(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    async with admin(fake, local) as client:
        user = await client.users.get(fake.user(TOTP_EMAIL).id)
    text = repr(user)
    assert "config=UserConfiguration(revision=1, ...)" in text
    assert text.count("display_name=") == 1
    assert json.dumps(fake.user_json(fake.user(TOTP_EMAIL)))  # the wire stays JSON strings
    assert isinstance(fake.user_json(fake.user(TOTP_EMAIL))["createdTimestamp"], str)


async def test_invalid_input_is_refused_before_sending(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    from mfa_common.errors import InvalidInputError

    async with admin(fake, local) as client:
        with pytest.raises(InvalidInputError):
            await client.users.update_config(1, UpdateUser())
        with pytest.raises(InvalidInputError):
            await client.users.limits.set(1, UserLimits())
        with pytest.raises(InvalidInputError):
            await client.users.ssh_keys.add(1, "nonsense")
        with pytest.raises(InvalidInputError):
            await client.users.ssh_keys.get(1, -3)
        with pytest.raises(InvalidInputError):
            await client.users.create("not-an-address", display_name="X")
    assert fake.controls.total_requests == 0


async def test_fake_refuses_lone_surrogates_without_corrupting_state(
    fake: MetalCloudFake, local: dict[str, Any]
) -> None:
    target = fake.add_user("target@example.test", "target-password")
    key = {"Authorization": f"Bearer {fake.user(ADMIN_EMAIL).api_key}", "Content-Type": "application/json"}
    bodies = [
        (
            "POST",
            "/api/v2/users",
            '{"displayName": "\\ud800", "email": "s@example.test", "accessLevel": "user"}',
        ),
        ("PATCH", f"/api/v2/users/{target.id}/config", '{"displayName": "bad \\udfff"}'),
        ("PATCH", f"/api/v2/users/{target.id}/config", '{"\\ud800": true}'),
        ("PATCH", f"/api/v2/users/{target.id}/meta", '{"guiSettings": {"userAgent": "\\ud800"}}'),
        ("POST", f"/api/v2/users/{target.id}/ssh-keys", '{"sshKey": "ssh-ed25519 AAAA \\ud800"}'),
    ]
    async with httpx.AsyncClient(**local) as raw:
        for method, path, body in bodies:
            headers = {**key, "If-Match": str(target.revision)}
            answer = await raw.request(method, path, content=body.encode(), headers=headers)
            assert answer.status_code == 400, (path, answer.text)
        assert (await raw.get(f"/api/v2/users/{target.id}", headers=key)).status_code == 200
        assert (await raw.get("/api/v2/users", headers=key)).status_code == 200
    assert fake.ledger.entries() == [] and fake.find_user("s@example.test") is None


async def test_current_user_api_key_path_has_no_user_id(fake: MetalCloudFake) -> None:
    recorder = Recorder(httpx.ASGITransport(fake))
    async with MetalCloudClient(
        "http://metalcloud.localhost", api_key=fake.user(TOTP_EMAIL).api_key, transport=recorder
    ) as client:
        key = await client.user.get_api_key()
    assert key.user_id == fake.user(TOTP_EMAIL).id
    assert [r.url.path for r in recorder.sent] == ["/api/v2/user/api-key"]


async def test_find_by_email_ignores_case_and_substrings(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    fake.add_user("Mixed.Case@Example.test", "pw-mixed-123")
    fake.add_user("xmixed.case@example.test.org", "pw-other-123")
    async with admin(fake, local) as client:
        found = await client.users.find_by_email("mixed.case@example.TEST")
        assert found is not None and found.email == "Mixed.Case@Example.test"


def test_a_user_with_oddly_shaped_nested_objects_still_reads() -> None:
    from metalcloud_async.models import User, converter

    user = converter.structure(
        {"id": 4, "limits": {"driveMaxSizeMbytes": "lots"}, "config": {"revision": "3"}, "disabledLimits": 7},
        User,
    )
    assert user.id == 4 and user.limits is None and user.disabled_limits is None
    assert user.config is not None and user.config.revision == 3


async def test_a_lost_delete_answer_is_not_replayed(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    from mfa_common.errors import APIConnectionError

    target = fake.add_user("target@example.test", "target-password")
    async with admin(fake, local) as client:
        key = await client.users.ssh_keys.add(target.id, SSH_KEY)
        fake.controls.fail_next("drop_after", path=f"/api/v2/users/{target.id}/ssh-keys/{key.id}")
        with pytest.raises(APIConnectionError):
            await client.users.ssh_keys.delete(target.id, key.id)
    assert fake.controls.requests_to("DELETE", f"/api/v2/users/{target.id}/ssh-keys/{key.id}") == 1
    assert len(fake.ledger.entries("delete-ssh-key")) == 1


async def test_lockout_table_stays_bounded_and_a_success_clears_the_count(clock: FakeClock) -> None:
    from metalcloud_async.testing import _fake as fake_module

    fake = MetalCloudFake(clock=clock, max_failed_logins=2)
    fake.add_user("a@example.test", "right-password")
    async with httpx.AsyncClient(
        base_url="http://metalcloud.localhost", transport=httpx.ASGITransport(fake)
    ) as raw:

        async def login(email: str, password: str) -> int:
            body = {"provider": "mysql", "properties": {"email": email, "password": password}}
            return (await raw.post("/api/v2/login", json=body)).status_code

        assert await login("a@example.test", "wrong") == 401
        assert await login("a@example.test", "right-password") == 200
        assert await login("a@example.test", "wrong") == 401  # the success reset the count
        assert await login("a@example.test", "wrong") == 401
        assert await login("a@example.test", "right-password") == 403
        assert await login("a@example.test", "right-password") == 403  # still locked
        original = fake_module.MAX_TRACKED_ADDRESSES
        fake_module.MAX_TRACKED_ADDRESSES = 50
        try:
            for i in range(120):
                assert await login(f"random{i}@example.test", "x") == 401
        finally:
            fake_module.MAX_TRACKED_ADDRESSES = original
    assert len(fake._failed_logins) == 50
