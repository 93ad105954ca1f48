"""What the official MetalCloud clients do, written down as tests against the fake where it goes
beyond ``tests/specs/metalcloud-v2.yaml`` (every answer is still validated against the spec):

* ``metalcloud-cli user config-update`` sends the *user's* ``revision`` as ``If-Match`` on
  ``PATCH /api/v2/users/{id}/config``: the configuration and the user are one stored row with one
  revision, so that call works after any other write to the user;
* the Terraform provider sends an ``ETag`` back verbatim as ``If-Match``: every read whose
  write takes ``If-Match`` carries one (``GET .../limits`` included);
* ``POST /api/v2/users`` answers 201 with the new user's URL in ``Location``;
* ids are integers on the wire. The Go SDK of one snapshot formatted them as ``float32``
  (``/users/1e+07``); this SDK and the fake keep every digit of 10,000,000 and 3,000,000,000
  (read, change, list, batch).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from metalcloud_async import MetalCloudClient, UpdateUser, UserLimits
from metalcloud_async.jobs import force_reenrolment_job, parse_limits_row, parse_user_row, set_limits_job
from metalcloud_async.protocol import filter_in
from metalcloud_async.testing import MetalCloudFake
from mfa_common.batch import read_csv, run_batch_job
from mfa_common.clock import FakeClock
from mfa_common.testing import generate_base32_secret, serve
from tests.contract import ValidatingTransport

from .conftest import ADMIN_EMAIL
from .test_metalcloud_contract import spec_violations

pytestmark = pytest.mark.anyio

SPEC = "metalcloud-v2.yaml"
BASE = "http://metalcloud.localhost"
LARGE_IDS = (10_000_000, 3_000_000_000)


def admin_headers(fake: MetalCloudFake, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake.user(ADMIN_EMAIL).api_key}", **extra}


async def test_the_cli_config_update_with_the_users_revision_works_after_other_user_writes(
    fake: MetalCloudFake,
) -> None:
    target = fake.add_user("target@example.test", "target-password")
    transport = ValidatingTransport(httpx.ASGITransport(fake), SPEC)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as raw:
        path = f"/api/v2/users/{target.id}"
        suspend = {"suspendReason": "custom", "suspendReasonPublicComment": "audit"}
        for action, body in (("suspend", suspend), ("unsuspend", None)):
            revision = (await raw.get(path, headers=admin_headers(fake))).json()["revision"]
            answer = await raw.post(
                f"{path}/actions/{action}",
                json=body,
                headers=admin_headers(fake, **{"If-Match": str(revision)}),
            )
            assert answer.status_code in (200, 201), answer.text
        # metalcloud-cli: GET the user, then PATCH its config with the user's revision.
        user = (await raw.get(path, headers=admin_headers(fake))).json()
        assert user["revision"] == 3 and user["config"]["revision"] == 3
        patched = await raw.patch(
            f"{path}/config",
            json={"language": "ro"},
            headers=admin_headers(fake, **{"If-Match": str(user["revision"])}),
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["revision"] == 4 and patched.headers["etag"] == "4"
        # One revision: the user moved with its configuration, and either ETag fits the other.
        after = await raw.get(path, headers=admin_headers(fake))
        config = await raw.get(f"{path}/config", headers=admin_headers(fake))
        assert after.json()["revision"] == config.json()["revision"] == 4
        assert after.headers["etag"] == config.headers["etag"] == "4"
        archived = await raw.post(
            f"{path}/actions/archive", headers=admin_headers(fake, **{"If-Match": config.headers["etag"]})
        )
        assert archived.status_code == 200, archived.text
        stale = await raw.patch(
            f"{path}/config", json={"language": "en"}, headers=admin_headers(fake, **{"If-Match": "4"})
        )
        assert stale.status_code == 412
    assert spec_violations(transport) == []


async def test_the_sdk_update_config_reads_and_sends_the_users_revision(fake: MetalCloudFake) -> None:
    target = fake.add_user("target@example.test", "target-password")
    sent: list[httpx.Request] = []

    class Recorder(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = ValidatingTransport(httpx.ASGITransport(fake), SPEC)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return await self.inner.handle_async_request(request)

    recorder = Recorder()
    async with MetalCloudClient(BASE, api_key=fake.user(ADMIN_EMAIL).api_key, transport=recorder) as client:
        await client.users.suspend(target.id, public_comment="audit")
        await client.users.unsuspend(target.id)
        sent.clear()
        config = await client.users.update_config(target.id, UpdateUser(language="ro"))
        # What the official CLI sends: the user's revision, read from the user.
        assert [(r.method, r.url.path) for r in sent] == [
            ("GET", f"/api/v2/users/{target.id}"),
            ("PATCH", f"/api/v2/users/{target.id}/config"),
        ]
        assert sent[1].headers["if-match"] == "3"
        assert config.revision == 4 == (await client.users.get(target.id)).revision
        # A revision read from the configuration is the same number, so it works too.
        read = (await client.users.get_config(target.id)).revision
        config = await client.users.update_config(target.id, UpdateUser(language="en"), revision=read)
        assert config.revision == 5
    assert spec_violations(recorder.inner) == []


# Each read whose object's write takes If-Match, and that write (the Terraform provider's way).
ETAG_READS = [
    ("", "POST", "actions/archive", None),
    ("config", "PATCH", "config", {"language": "ro"}),
    ("limits", "PATCH", "actions/change-limits", {"infrastructureActiveMaxCount": 3}),
    ("default-limits", "PATCH", "actions/change-limits", {"infrastructureActiveMaxCount": 4}),
    (
        "permissions",
        "POST",
        "actions/change-resource-permissions",
        {"specialPermissions": {"create_verified_user": True}},
    ),
]


@pytest.mark.parametrize(("read", "method", "write", "body"), ETAG_READS)
async def test_an_etag_read_goes_back_verbatim_as_if_match(
    fake: MetalCloudFake, read: str, method: str, write: str, body: Any
) -> None:
    target = fake.add_user("target@example.test", "target-password")
    target.revision = 7
    transport = ValidatingTransport(httpx.ASGITransport(fake), SPEC)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as raw:
        path = f"/api/v2/users/{target.id}"
        got = await raw.get(f"{path}/{read}".rstrip("/"), headers=admin_headers(fake))
        assert got.headers.get("etag") == "7", read
        changed = await raw.request(
            method,
            f"{path}/{write}",
            json=body,
            headers=admin_headers(fake, **{"If-Match": got.headers["etag"]}),
        )
        assert changed.status_code == 200, changed.text
        assert changed.headers["etag"] == "8" and target.revision == 8
    assert spec_violations(transport) == []


async def test_create_user_answers_the_new_users_location(fake: MetalCloudFake) -> None:
    transport = ValidatingTransport(httpx.ASGITransport(fake), SPEC)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as raw:
        created = await raw.post(
            "/api/v2/users",
            json={"displayName": "New", "email": "new@example.test", "accessLevel": "user"},
            headers=admin_headers(fake),
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert created.headers["location"] == f"/api/v2/users/{body['id']}"
        assert created.headers["etag"] == str(body["revision"])
        again = await raw.get(created.headers["location"], headers=admin_headers(fake))
        assert again.status_code == 200 and again.json()["email"] == "new@example.test"
    assert spec_violations(transport) == []


class _Recorder(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = await self.inner.handle_async_request(request)
        self.bodies.append(await response.aread())
        return response


def _no_float_ids(recorder: _Recorder, uid: int) -> None:
    """Every id the client put on the wire, and every id the fake answered, is the integer."""
    for request in recorder.sent:
        assert not re.search(r"\d[eE][+-]?\d|\d\.0\b", str(request.url)), request.url
        assert not re.search(rb"[eE]\+\d", request.content), request.content
    assert any(f"/users/{uid}".encode() in r.url.raw_path for r in recorder.sent)
    assert all(b'"id": %d.' % uid not in b and b'"id":%d.' % uid not in b for b in recorder.bodies)
    assert any(b'"id":%d' % uid in b for b in recorder.bodies)


@pytest.mark.parametrize("uid", LARGE_IDS)
async def test_large_user_ids_stay_integers_in_the_sdk_and_the_fake(
    fake: MetalCloudFake, clock: FakeClock, uid: int
) -> None:
    target = fake.add_user(f"big{uid}@example.test", "big-password", user_id=uid, account_id=101)
    delegate = fake.add_user(f"d{uid}@example.test", "d-password", user_id=uid + 1)
    fake.add_user("other@example.test", "other-password", account_id=102)
    recorder = _Recorder(ValidatingTransport(httpx.ASGITransport(fake), SPEC))
    async with MetalCloudClient(
        BASE, api_key=fake.user(ADMIN_EMAIL).api_key, transport=recorder, clock=clock
    ) as client:
        user = await client.users.get(uid)
        assert (user.id, type(user.id)) == (uid, int)
        await client.users.suspend(uid, public_comment="audit")
        await client.users.unsuspend(uid)
        config = await client.users.update_config(uid, UpdateUser(language="ro"))
        assert config.revision == target.revision
        await client.users.limits.set(uid, UserLimits(infrastructure_active_max_count=2))
        await client.users.delegates.add(uid, delegate.id)
        children = [d.id async for d in client.users.delegates.children(uid)]
        assert children == [uid + 1]
        await client.users.change_account(uid, 102)
        listed = [
            u.id
            async for u in client.users.list(filters={"id": filter_in([uid, uid + 1])}, sort_by=["id:DESC"])
        ]
        assert listed == [uid + 1, uid]
    async with MetalCloudClient(BASE, api_key=target.api_key, transport=recorder) as own:
        assert (await own.user.get_api_key()).user_id == uid
    assert target.limits == {"infrastructureActiveMaxCount": 2} and target.account_id == 102
    _no_float_ids(recorder, uid)
    assert spec_violations(recorder.inner) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("uid", LARGE_IDS)
async def test_large_user_ids_in_batch_jobs(fake: MetalCloudFake, tmp_path: Path, uid: int) -> None:
    fake.add_user(
        f"big{uid}@example.test", "big-password", user_id=uid, totp_secret=generate_base32_secret(20)
    )
    users_csv = tmp_path / "users.csv"
    users_csv.write_text(f"user\n{uid}\n")
    limits_csv = tmp_path / "limits.csv"
    limits_csv.write_text(f"user,infrastructure_active_max_count\n{uid},7\n")
    with serve(fake) as server:
        async with MetalCloudClient(server.base_url, api_key=fake.user(ADMIN_EMAIL).api_key) as client:
            forced = await run_batch_job(
                force_reenrolment_job(client, rows=read_csv(users_csv, parse_user_row))
            )
            limited = await run_batch_job(set_limits_job(client, read_csv(limits_csv, parse_limits_row)))
    assert (forced.summary.done, limited.summary.done) == (1, 1)
    assert fake.user(uid).authenticator_must_change and fake.user(uid).limits == {
        "infrastructureActiveMaxCount": 7
    }
    assert {e.key for e in fake.ledger.entries()} == {str(uid)}
