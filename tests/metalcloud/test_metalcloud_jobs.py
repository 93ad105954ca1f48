"""The batch administration jobs of ``metalcloud_async.jobs``, driven directly against the
fake over a loopback socket: idempotent re-runs, a dry run that writes nothing, a fault run whose
lost writes are verified instead of repeated, and a journaled resume."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.jobs import (
    add_ssh_keys_job,
    create_users_job,
    force_reenrolment_job,
    parse_limits_row,
    parse_new_user_row,
    parse_ssh_key_row,
    parse_user_row,
    set_limits_job,
)
from metalcloud_async.testing import MetalCloudFake
from mfa_common.batch import CsvRowError, read_csv, run_batch_job
from mfa_common.clock import FakeClock
from mfa_common.errors import InvalidInputError
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from mfa_common.testing import generate_base32_secret, serve

from .conftest import ADMIN_EMAIL

pytestmark = pytest.mark.anyio

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVsbG8td29ybGQtZXhhbXBsZS1rZXktYnl0ZXM= a@x"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNlY29uZC1leGFtcGxlLWtleS1ieXRlcy1oZXJl b@y"


@pytest.fixture
def url(fake: MetalCloudFake) -> Iterator[str]:
    with serve(fake) as server:
        yield server.base_url


def client_for(fake: MetalCloudFake, url: str) -> MetalCloudClient:
    return MetalCloudClient(
        url, api_key=fake.user(ADMIN_EMAIL).api_key, options=ClientOptions(retry=RetryPolicy(max_retries=0))
    )


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def new_users_csv(tmp_path: Path, count: int) -> Path:
    lines = ["email,display_name,access_level,email_verified"]
    lines += [f"person{i}@example.test,Person {i},user,{'true' if i % 2 else 'false'}" for i in range(count)]
    return write_csv(tmp_path / "users.csv", "\n".join(lines) + "\n")


async def test_create_users_is_idempotent_by_email(fake: MetalCloudFake, url: str, tmp_path: Path) -> None:
    path = new_users_csv(tmp_path, 6)
    fake.add_user("PERSON3@example.test", "already-here")
    async with client_for(fake, url) as client:
        first = await run_batch_job(
            create_users_job(client, read_csv(path, parse_new_user_row)), concurrency=4
        )
        assert (first.summary.done, first.summary.skipped) == (5, 1)
        again = await run_batch_job(
            create_users_job(client, read_csv(path, parse_new_user_row)), concurrency=4
        )
        assert (again.summary.done, again.summary.skipped) == (0, 6)
    assert len(fake.ledger.entries("create-user")) == 5
    assert fake.ledger.duplicates("create-user") == {}
    assert sorted(u.email for u in fake.users if u.email.startswith("person")) == [
        f"person{i}@example.test" for i in (0, 1, 2, 4, 5)
    ]
    assert (
        fake.user("person1@example.test").email_verified
        and not fake.user("person0@example.test").email_verified
    )


async def test_dry_run_writes_nothing_and_lists_the_plan(
    fake: MetalCloudFake, url: str, tmp_path: Path
) -> None:
    path = new_users_csv(tmp_path, 3)
    fake.add_user("person1@example.test", "already-here")
    async with client_for(fake, url) as client:
        result = await run_batch_job(
            create_users_job(client, read_csv(path, parse_new_user_row)), dry_run=True
        )
    assert len(fake.ledger) == 0
    assert [c["email"] for c in result.planned] == ["person0@example.test", "person2@example.test"]
    assert result.as_dict()["would_change"][0]["action"] == "create user"
    assert result.summary.skipped_by_reason == {"user exists": 1}


async def test_fault_run_verifies_lost_writes_instead_of_repeating(
    fake: MetalCloudFake, url: str, tmp_path: Path
) -> None:
    path = new_users_csv(tmp_path, 4)
    # The server applies two creations but the answers never arrive.
    fake.controls.fail_next("drop_after", 2, path="/api/v2/users", method="POST")
    async with client_for(fake, url) as client:
        result = await run_batch_job(
            create_users_job(client, read_csv(path, parse_new_user_row)),
            concurrency=1,
            journal=tmp_path / "create.journal",
        )
    assert fake.controls.faults_injected == {"drop_after": 2}
    assert (result.summary.done, result.summary.unknown, result.summary.failed) == (4, 0, 0)
    assert len(fake.ledger.entries("create-user")) == 4 and fake.ledger.duplicates() == {}


async def test_failed_items_are_retried_on_resume_and_done_ones_are_not_repeated(
    fake: MetalCloudFake, url: str, tmp_path: Path
) -> None:
    path = new_users_csv(tmp_path, 5)
    journal = tmp_path / "create.journal"
    fake.controls.fail_next("server_error", 2, path="/api/v2/users", method="POST")
    async with client_for(fake, url) as client:
        first = await run_batch_job(
            create_users_job(client, read_csv(path, parse_new_user_row)), concurrency=1, journal=journal
        )
        assert (first.summary.done, first.summary.failed) == (3, 2)
        before = fake.controls.total_requests
        second = await run_batch_job(
            create_users_job(client, read_csv(path, parse_new_user_row)), concurrency=1, journal=journal
        )
    assert (second.summary.done, second.summary.skipped, second.summary.failed) == (2, 3, 0)
    # Only the two failed rows were looked at again (one lookup and one creation each).
    assert fake.controls.total_requests - before == 4
    assert len(fake.ledger.entries("create-user")) == 5


async def test_force_reenrolment_from_csv_and_by_authenticator_age(
    fake: MetalCloudFake, url: str, tmp_path: Path, clock: FakeClock
) -> None:
    old = fake.add_user("old@example.test", "pw-old-123", totp_secret=generate_base32_secret(20))
    clock.advance(86_400 * 30)
    fresh = fake.add_user("fresh@example.test", "pw-fresh-12", totp_secret=generate_base32_secret(20))
    none = fake.add_user("none@example.test", "pw-none-123")
    path = write_csv(tmp_path / "r.csv", f"user\n{old.id}\nfresh@example.test\nghost@example.test\n")
    async with client_for(fake, url) as client:
        by_csv = await run_batch_job(force_reenrolment_job(client, rows=read_csv(path, parse_user_row)))
        assert (by_csv.summary.done, by_csv.summary.skipped) == (2, 1)
        assert by_csv.summary.skipped_by_reason == {"no such user": 1}
        assert old.authenticator_must_change and fresh.authenticator_must_change
        old.authenticator_must_change = fresh.authenticator_must_change = False
        cutoff = datetime.fromtimestamp(clock.now() - 86_400, tz=timezone.utc)
        plan = await run_batch_job(force_reenrolment_job(client, created_before=cutoff), dry_run=True)
        stale = {c["email"] for c in plan.planned}
        # The 2FA admin of the fixtures and "old" were enrolled before the cutoff.
        assert stale == {"old@example.test", "totp@example.test"}
        assert plan.summary.skipped_by_reason == {"no authenticator": 2, "authenticator is fresh": 1}
        applied = await run_batch_job(force_reenrolment_job(client, created_before=cutoff))
        assert applied.summary.done == 2
        again = await run_batch_job(force_reenrolment_job(client, created_before=cutoff))
        assert again.summary.done == 0 and again.summary.skipped_by_reason["re-enrolment already due"] == 2
    assert (
        old.authenticator_must_change
        and not fresh.authenticator_must_change
        and not none.authenticator_must_change
    )


async def test_force_reenrolment_lost_answer_is_verified(
    fake: MetalCloudFake, url: str, tmp_path: Path
) -> None:
    target = fake.add_user("t@example.test", "pw-target-1", totp_secret=generate_base32_secret(20))
    fake.controls.fail_next("drop_after", path=f"/api/v2/users/{target.id}/config", method="PATCH")
    async with client_for(fake, url) as client:
        rows = read_csv(write_csv(tmp_path / "r.csv", "user\nt@example.test\n"), parse_user_row)
        result = await run_batch_job(force_reenrolment_job(client, rows=rows))
    assert result.summary.done == 1 and result.summary.unknown == 0
    assert len(fake.ledger.entries("update-config")) == 1


async def test_ssh_keys_and_limits_jobs(fake: MetalCloudFake, url: str, tmp_path: Path) -> None:
    target = fake.add_user("t@example.test", "pw-target-1")
    keys = write_csv(
        tmp_path / "k.csv",
        f'user,ssh_key\n{target.id},"{KEY_A}"\nt@example.test,"{KEY_B}"\n{target.id},"{KEY_A.replace("a@x", "other")}"\n',
    )
    limits = write_csv(
        tmp_path / "l.csv",
        f"user,infrastructureActiveMaxCount,allow_vlan_overrides,storage_types\n{target.id},4,true,iscsi_ssd;nvme\n",
    )
    async with client_for(fake, url) as client:
        added = await run_batch_job(
            add_ssh_keys_job(client, read_csv(keys, parse_ssh_key_row)), concurrency=1
        )
        assert (added.summary.done, added.summary.skipped) == (2, 1)
        plan = await run_batch_job(set_limits_job(client, read_csv(limits, parse_limits_row)), dry_run=True)
        assert plan.planned[0]["before"]["changes"]["infrastructure_active_max_count"] == {
            "from": 10,
            "to": 4,
        }
        done = await run_batch_job(set_limits_job(client, read_csv(limits, parse_limits_row)))
        assert done.summary.done == 1
        again = await run_batch_job(set_limits_job(client, read_csv(limits, parse_limits_row)))
        assert again.summary.skipped_by_reason == {"limits already set": 1}
    assert target.limits == {
        "infrastructureActiveMaxCount": 4,
        "allowVlanOverrides": True,
        "storageTypes": ["iscsi_ssd", "nvme"],
    }
    assert len(fake.ledger.entries("add-ssh-key")) == 2


@pytest.mark.parametrize(
    ("text", "parse", "line", "words"),
    [
        ("email,display_name\nok@example.test,Ok\nbroken,Name\n", parse_new_user_row, 3, "e-mail"),
        ("email,display_name\nok@example.test,\n", parse_new_user_row, 2, "display_name"),
        ("user,drive_max_size_mbytes,warp_drive\n1,5,3\n", parse_limits_row, 2, "warp_drive"),
        ("user,drive_max_size_mbytes\n1,-5\n", parse_limits_row, 2, "non-negative"),
        ("user,ssh_key\n1,nonsense\n", parse_ssh_key_row, 2, "OpenSSH"),
        ("user\nJohn Smith\n", parse_user_row, 2, "user id or an e-mail"),
        ("user\n1,2\n", parse_user_row, 2, "more values"),
        ("user,drive_max_size_mbytes\n7,5\n8,1\n7,6\n", parse_limits_row, 4, "7 is on line 2 too"),
        (
            "email,display_name\nA@example.test,One\na@example.test,Two\n",
            parse_new_user_row,
            3,
            "a@example.test is on line 2 too",
        ),
    ],
)
def test_bad_csv_rows_are_refused_before_anything_is_sent(
    tmp_path: Path, text: str, parse: Any, line: int, words: str
) -> None:
    with pytest.raises(CsvRowError) as caught:
        read_csv(write_csv(tmp_path / "bad.csv", text), parse)
    assert caught.value.line == line and words in str(caught.value)


def test_a_row_repeated_with_the_same_change_is_accepted(tmp_path: Path) -> None:
    rows = read_csv(write_csv(tmp_path / "l.csv", "user,drive_max_size_mbytes\n7,5\n7,5\n"), parse_limits_row)
    assert [row.key for row in rows] == ["7", "7"]  # the runner skips the second as a duplicate
    same_key = f'user,ssh_key\n3,"{KEY_A}"\n3,"{KEY_A.replace("a@x", "other")}"\n'
    assert len(list(read_csv(write_csv(tmp_path / "k.csv", same_key), parse_ssh_key_row))) == 2


def test_empty_or_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no rows"):
        read_csv(write_csv(tmp_path / "e.csv", "user\n\n"), parse_user_row)
    with pytest.raises(InvalidInputError, match="cannot read"):
        read_csv(tmp_path / "absent.csv", parse_user_row)


class _CancelAfterWrite(httpx.AsyncBaseTransport):
    """Cancels the run right after the server answered one creation: the write is applied, its
    journal line stays ``started`` (what a kill mid-write leaves)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, scope: anyio.CancelScope, after: int) -> None:
        self.inner = inner
        self.scope = scope
        self.after = after
        self.creations = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == "/api/v2/users":
            self.creations += 1
            if self.creations == self.after:
                self.scope.cancel()
                await anyio.lowlevel.checkpoint()
        return response


async def test_a_run_cancelled_mid_write_resumes_by_verifying(
    fake: MetalCloudFake, url: str, tmp_path: Path
) -> None:
    path = new_users_csv(tmp_path, 6)
    journal = tmp_path / "create.journal"
    with anyio.CancelScope() as scope:
        transport = _CancelAfterWrite(httpx.AsyncHTTPTransport(), scope, after=3)
        async with MetalCloudClient(
            url,
            api_key=fake.user(ADMIN_EMAIL).api_key,
            transport=transport,
            options=ClientOptions(retry=RetryPolicy(max_retries=0)),
        ) as client:
            await run_batch_job(
                create_users_job(client, read_csv(path, parse_new_user_row)), concurrency=1, journal=journal
            )
    assert scope.cancelled_caught and len(fake.ledger.entries("create-user")) == 3
    async with client_for(fake, url) as client:
        resumed = await run_batch_job(
            create_users_job(client, read_csv(path, parse_new_user_row)), concurrency=1, journal=journal
        )
    # Two rows finished before the cancel (skipped by the journal), the third was in doubt and
    # found applied by the verification, the other three are created now: none twice.
    assert (resumed.summary.done, resumed.summary.skipped) == (4, 2)
    assert len(fake.ledger.entries("create-user")) == 6 and fake.ledger.duplicates("create-user") == {}
