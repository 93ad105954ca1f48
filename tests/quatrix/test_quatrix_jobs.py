"""The MFA jobs of ``quatrix_async.jobs``, run without the command line against the fake, in
process and over a loopback socket: journaled runs, resumes that repeat no write (after failed
items, and after a run cancelled mid-write), dry runs that send no write, lost answers verified
instead of repeated. The fake's ledger (every write it applied) and counters are the proof."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from mfa_common.batch import BatchJob, CsvRowError, read_csv, run_batch_job
from mfa_common.clock import FakeClock
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from mfa_common.testing import serve
from quatrix_async import QuatrixClient
from quatrix_async.jobs import (
    UnknownUserError,
    UserRef,
    parse_user_ref,
    remove_mfa_job,
    reset_mfa_job,
    set_mfa_job,
)
from quatrix_async.testing import QuatrixFake
from quatrix_async.testing._fake import FakeUser

from .conftest import PASSWORD, ClientFactory

pytestmark = pytest.mark.anyio

OWN_ACCOUNT = "own account (use the profile commands)"
NO_RETRIES = ClientOptions(retry=RetryPolicy(max_retries=0))


@pytest.fixture
def admin(fake: QuatrixFake) -> FakeUser:
    return fake.add_user("admin@acme.test", PASSWORD, mfa=True, admin=True)


@pytest.fixture
def api_key(fake: QuatrixFake, admin: FakeUser) -> str:
    return fake.issue_api_key(admin.email)


def add_users(fake: QuatrixFake, count: int, **mfa: object) -> list[FakeUser]:
    return [fake.add_user(f"user{i:02d}@acme.test", PASSWORD, **mfa) for i in range(count)]  # type: ignore[arg-type]


def write_csv(path: Path, header: str, values: list[str]) -> Path:
    path.write_text("\n".join([header, *values]) + "\n")
    return path


async def test_reset_from_a_csv_with_a_journal(
    make_client: ClientFactory,
    fake: QuatrixFake,
    admin: FakeUser,
    api_key: str,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    with_2fa = add_users(fake, 4, mfa=True)
    without = fake.add_user("plain@acme.test", PASSWORD)
    emails = [u.email for u in with_2fa] + [without.email, admin.email, "ghost@acme.test", with_2fa[0].email]
    path = write_csv(tmp_path / "users.csv", "E-mail,name", [f"{e},x" for e in emails])
    journal = tmp_path / "reset.journal"
    clock.advance(60)
    async with make_client(api_key=api_key, validate=False, options=NO_RETRIES) as client:
        first = await run_batch_job(reset_mfa_job(client, read_csv(path, parse_user_ref)), journal=journal)
        again = await run_batch_job(reset_mfa_job(client, read_csv(path, parse_user_ref)), journal=journal)

    summary = first.summary
    assert (summary.done, summary.skipped, summary.failed, summary.unknown) == (4, 2, 1, 0)
    assert summary.skipped_by_reason == {"no 2FA to reset": 1, OWN_ACCOUNT: 1}
    assert list(summary.failures_by_reason) == ["UnknownUserError"]
    assert summary.failures_by_reason["UnknownUserError"].example_keys == ("email:ghost@acme.test",)
    assert first.as_dict()["action"] == "reset 2FA"
    # The second run finds every user settled in the journal: nothing is sent again.
    assert again.summary.skipped_by_reason == {"already done (journal)": 4, "already skipped (journal)": 2}
    assert again.summary.done == 0 and again.summary.failed == 1
    assert fake.ledger.keys("user.reset-mfa") == {u.id for u in with_2fa}
    assert fake.ledger.duplicates() == {}
    assert all(u.totp_secret is None for u in with_2fa) and admin.totp_secret is not None


async def test_a_resumed_run_repeats_no_write(
    make_client: ClientFactory, fake: QuatrixFake, admin: FakeUser, api_key: str, tmp_path: Path
) -> None:
    users = add_users(fake, 8, pin="13579")
    journal = tmp_path / "remove.journal"
    fake.controls.fail_next("server_error", 3, path="*/user/remove-mfa")
    async with make_client(api_key=api_key, validate=False, options=NO_RETRIES) as client:
        first = await run_batch_job(remove_mfa_job(client, "PIN"), journal=journal, concurrency=1)
        assert (first.summary.done, first.summary.failed) == (5, 3)
        assert first.summary.skipped_by_reason == {OWN_ACCOUNT: 1}
        writes = len(fake.ledger.entries("user.remove-mfa"))
        second = await run_batch_job(remove_mfa_job(client, "PIN"), journal=journal, concurrency=1)

    assert writes == 5
    assert (second.summary.done, second.summary.failed) == (3, 0)
    assert second.summary.skipped_by_reason == {"already done (journal)": 5, "already skipped (journal)": 1}
    assert fake.ledger.keys("user.remove-mfa") == {u.id for u in users}
    assert len(fake.ledger.entries("user.remove-mfa")) == 8 and fake.ledger.duplicates() == {}
    assert all(u.mfa_kind == "none" for u in users) and admin.mfa_kind == "2fa"


async def test_a_dry_run_sends_no_write(
    make_client: ClientFactory, fake: QuatrixFake, admin: FakeUser, api_key: str
) -> None:
    users = add_users(fake, 3)
    had = fake.add_user("had@acme.test", PASSWORD, pin="13579")
    async with make_client(api_key=api_key, validate=False) as client:
        before = fake.controls.total_requests
        # A dry run of setting a PIN needs no PIN.
        plan = await run_batch_job(
            set_mfa_job(client, "pin", [*(u.email for u in users), had.id]), dry_run=True
        )
        sent = fake.controls.total_requests - before

    assert fake.ledger.entries() == []
    assert sent == 2  # the profile and the user listing, nothing else
    assert plan.dry_run and plan.summary.done == 4
    assert [c["email"] for c in plan.planned] == sorted(
        [*(u.email for u in users), had.email], key=lambda e: fake.user(e).id
    )
    by_email = {c["email"]: c for c in plan.planned}
    assert by_email[had.email]["before"]["auth_methods"] == ["PIN"]
    assert by_email[users[0].email] == {
        "id": users[0].id,
        "email": users[0].email,
        "action": "set PIN",
        "before": {
            "auth_methods": [],
            "forced_auth": [],
            "modified": by_email[users[0].email]["before"]["modified"],
        },
    }
    assert plan.as_dict()["count"] == 4 and plan.as_dict()["would_change"] == plan.planned
    assert all(u.pin is None for u in users) and had.pin == "13579"


async def test_a_lost_reset_answer_is_verified_not_repeated(
    make_client: ClientFactory, fake: QuatrixFake, admin: FakeUser, api_key: str, clock: FakeClock
) -> None:
    users = add_users(fake, 4, mfa=True)
    clock.advance(60)  # the resets move the users' modified time on
    # The server applies two resets but their answers never arrive (a reset is never retried).
    fake.controls.fail_next("drop_after", 2, path="*/user/reset-mfa")
    async with make_client(api_key=api_key, validate=False) as client:
        result = await run_batch_job(reset_mfa_job(client, [u.id for u in users]), concurrency=1)

    assert fake.controls.faults_injected == {"drop_after": 2}
    assert (result.summary.done, result.summary.unknown, result.summary.failed) == (4, 0, 0)
    assert len(fake.ledger.entries("user.reset-mfa")) == 4 and fake.ledger.duplicates() == {}


async def test_setting_a_pin_writes_it_and_a_missing_pin_sends_nothing(
    make_client: ClientFactory, fake: QuatrixFake, admin: FakeUser, api_key: str
) -> None:
    users = add_users(fake, 2)
    refs = [UserRef("email", u.email) for u in users]
    async with make_client(api_key=api_key, validate=False) as client:
        refused = await run_batch_job(set_mfa_job(client, "PIN", refs))
        assert refused.summary.failed == 2 and fake.ledger.entries() == []
        assert "InvalidInputError" in refused.summary.failures_by_reason
        done = await run_batch_job(set_mfa_job(client, "PIN", refs, pin="86421"))
        assert done.summary.done == 2 and all(u.pin == "86421" for u in users)
        assert fake.ledger.keys("user.set-mfa") == {u.id for u in users}
        forced = await run_batch_job(set_mfa_job(client, "2FA", refs))
        again = await run_batch_job(set_mfa_job(client, "2FA", refs))

    assert forced.summary.done == 2 and all("2FA" in u.forced_auth for u in users)
    assert again.summary.skipped_by_reason == {"2FA already set": 2}
    assert len(fake.ledger.entries("user.set-mfa")) == 4


class _CancelAfterWrite(httpx.AsyncBaseTransport):
    """Cancels the run right after the server answered the ``after``-th write to ``suffix``: the
    write is applied, its journal line stays ``started`` (what a kill mid-write leaves)."""

    def __init__(self, scope: anyio.CancelScope, suffix: str, after: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.scope, self.suffix, self.after = scope, suffix, after
        self.writes = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith(self.suffix):
            self.writes += 1
            if self.writes == self.after:
                self.scope.cancel()
                await anyio.lowlevel.checkpoint()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def url(fake: QuatrixFake) -> Iterator[str]:
    with serve(fake) as server:
        yield server.base_url


@pytest.mark.parametrize(
    ("job", "suffix", "in_doubt"),
    [
        # Verified from the user's MFA state: the write in doubt is found applied.
        pytest.param(lambda c: remove_mfa_job(c, "2FA"), "/user/remove-mfa", "done", id="remove"),
        # A reset is told only by the modified time planned before it, which a new process does
        # not have: the user in doubt stays unknown, and is not reset twice.
        pytest.param(lambda c: reset_mfa_job(c), "/user/reset-mfa", "unknown", id="reset"),
    ],
)
async def test_a_run_cancelled_mid_write_resumes_without_repeating_it(
    fake: QuatrixFake,
    admin: FakeUser,
    api_key: str,
    clock: FakeClock,
    url: str,
    tmp_path: Path,
    job: Callable[[QuatrixClient], BatchJob[Any]],
    suffix: str,
    in_doubt: str,
) -> None:
    users = add_users(fake, 6, mfa=True)
    clock.advance(60)
    journal = tmp_path / "run.journal"
    with anyio.CancelScope() as scope:
        transport = _CancelAfterWrite(scope, suffix, after=3)
        async with QuatrixClient(url, api_key=api_key, transport=transport, clock=clock) as client:
            await run_batch_job(job(client), journal=journal, concurrency=1)
    kind = "user." + suffix.rsplit("/", 1)[1]
    assert scope.cancelled_caught and len(fake.ledger.entries(kind)) == 3

    async with QuatrixClient(url, api_key=api_key, clock=clock) as client:
        resumed = await run_batch_job(job(client), journal=journal, concurrency=1)

    # Two users finished before the cancel (skipped by the journal), the third was in doubt.
    skipped = resumed.summary.skipped_by_reason
    assert skipped == {"already done (journal)": 2, "already skipped (journal)": 1}  # and yourself
    if in_doubt == "done":
        assert (resumed.summary.done, resumed.summary.unknown) == (4, 0)
        assert fake.ledger.keys(kind) == {u.id for u in users}
    else:
        assert (resumed.summary.done, resumed.summary.unknown) == (3, 1)
        assert len(fake.ledger.keys(kind)) == 6
    assert fake.ledger.duplicates(kind) == {}


async def test_unknown_users_fail_and_the_batch_goes_on(
    make_client: ClientFactory, fake: QuatrixFake, admin: FakeUser, api_key: str
) -> None:
    user = fake.add_user("pin@acme.test", PASSWORD, pin="13579")
    async with make_client(api_key=api_key, validate=False) as client:
        job = remove_mfa_job(client, "PIN", ["nobody@acme.test", "no-such-id", user.email, user.id])
        result = await run_batch_job(job)
    assert (result.summary.done, result.summary.failed) == (1, 2)  # the user named twice runs once
    reason = result.summary.failures_by_reason["UnknownUserError"]
    assert set(reason.example_keys) == {"email:nobody@acme.test", "id:no-such-id"}
    assert "not in this account" in reason.example_message
    assert reason.reason == UnknownUserError.__name__ and fake.ledger.keys("user.remove-mfa") == {user.id}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name\nalice\n", 2, "'id' or 'email'"),
        ("email,name\n,alice\n", 2, "'email' is empty"),
        ("id\n1,2\n", 2, "more values"),
    ],
)
def test_a_bad_csv_is_refused_before_anything_is_sent(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CsvRowError) as caught:
        read_csv(path, parse_user_ref)
    assert caught.value.line == line and words in str(caught.value)


def test_the_id_column_wins_and_strings_name_users(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", "Email,ID", ["a@acme.test,17", "b@acme.test,18"])
    assert list(read_csv(path, parse_user_ref)) == [UserRef("id", "17"), UserRef("id", "18")]
    assert UserRef.of(" a@acme.test ") == UserRef("email", "a@acme.test") and UserRef.of("17").key == "id:17"
