"""The whole story in one command, against the shipped fakes on 127.0.0.1.

1. Enrol TOTP on an X-MFA-Token account (QR code drawn in the terminal, recovery codes stored
   in an owner-only file).
2. Log in through the MFA step with a replay-safe code (one login, one exchange).
3. Lose the authenticator: log in with a recovery code, then disable MFA inside the recovery window.
4. A batch job: a Quatrix admin resets MFA for thousands of users against a fake injecting
   latency and faults (5xx, dropped connections, slow and malformed replies), with a live
   progress bar; a second pass resumes from the journal, checks writes whose outcome was unknown
   against the server, and the fake's ledger proves nothing was applied twice or lost.
5. A MetalCloud report: every user without 2FA, read page by page through an API key.

    python -m examples.demo [--users 3000] [--fault-rate 0.1] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metalcloud_async import MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common.batch import BatchProgress, BatchSummary, Journal, Skip, run_batch
from mfa_common.code_providers import RecoveryCodeProvider
from mfa_common.errors import APIError
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from mfa_common.secret import Secret
from mfa_common.testing import FaultPlan, generate_base32_secret, serve
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth, enrol_totp
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

console = Console()

BATCH_FAULT_KINDS = ("server_error", "rate_limited", "drop_before", "drop_after", "slow", "malformed")


def show_qr(link: Secret[str], secret: Secret[str]) -> None:
    """Draw the provisioning URI as a QR code in the terminal (it is never written to disk)."""
    import segno

    qr = segno.make(link.reveal(), error="m")
    console.print("[bold]Scan this with your authenticator app:[/bold]")
    qr.terminal(compact=True)


async def act_enrol_and_login(base_url: str, fake: XMfaFake, workdir: Path) -> None:
    console.rule("[bold cyan]1. Enrol TOTP")
    password = Secret("correct-horse-7")
    fake.add_user("alice", password.reveal(), email="alice@example.com", recovery_email="a@backup.example")
    async with XMfaClient(base_url) as client:
        await client.session.login("alice", password)
        enrolment = await enrol_totp(client, show=show_qr, store_path=workdir / "alice-recovery.json")
    store = enrolment.recovery_codes
    console.print(
        f"MFA enabled; {store.remaining} recovery codes stored in [italic]{store.path}[/italic] "
        "(owner-only file)."
    )

    console.rule("[bold cyan]2. Log in through the MFA step")
    before = dict(fake.counts)
    auth = XMfaTokenAuth("alice", password, totp_secret=enrolment.totp)
    async with XMfaClient(base_url, auth=auth) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(client.user.get)
        me = await client.user.get()
    logins = fake.counts["login_attempt"] - before.get("login_attempt", 0)
    exchanges = fake.counts["exchange"] - before.get("exchange", 0)
    console.print(
        f"51 concurrent calls as [bold]{me.user}[/bold] (mfa={me.mfa}): "
        f"{logins} password login, {exchanges} MFA exchange."
    )

    console.rule("[bold cyan]3. Lose the authenticator, recover with a recovery code")
    recovery = XMfaTokenAuth("alice", password, code_provider=RecoveryCodeProvider(store))
    async with XMfaClient(base_url, auth=recovery) as client:
        me = await client.user.get()
        console.print(f"Logged in as [bold]{me.user}[/bold] with a recovery code; {store.remaining} left.")
    async with XMfaClient(base_url) as client:
        reservation = store.reserve()
        result = await client.session.recover("alice", reservation.code)
        reservation.mark_used()
        window = result.expires_at.strftime("%H:%M:%S UTC") if result.expires_at else "unknown"
        await client.mfa.disable()
        console.print(f"Recovery window open until {window}: MFA disabled without another code.")


async def act_batch(args: argparse.Namespace, workdir: Path) -> None:
    console.rule(f"[bold cyan]4. Batch: reset MFA for {args.users:,} Quatrix users")
    fake = QuatrixFake()
    admin_password = "Adm1n-demo-pass"
    admin = fake.add_user(email="admin@example.com", password=admin_password, mfa=True, admin=True)
    user_ids = [
        fake.add_user(email=f"user{n:05d}@example.com", password=f"pw-{n}", mfa=True).id
        for n in range(args.users)
    ]
    fake.controls.latency = args.latency
    fake.controls.faults = FaultPlan.uniform(
        args.fault_rate,
        kinds=BATCH_FAULT_KINDS,
        seed=args.seed,
        slow_seconds=3.0,
        only_paths=["/api/1.0/user/reset-mfa", "/api/1.0/user/metadata/*"],
    )
    console.print(
        f"Fake: {args.latency * 1000:.0f} ms latency, {args.fault_rate:.0%} faults "
        f"({', '.join(BATCH_FAULT_KINDS)})."
    )
    journal_path = workdir / "reset-mfa.journal"
    with serve(fake) as server:
        async with QuatrixClient(
            server.base_url,
            email=admin.email,
            password=admin_password,
            totp_secret=admin.totp_secret,
            options=ClientOptions(
                timeout=1.5, retry=RetryPolicy(max_retries=3, initial_backoff=0.05, max_backoff=0.5)
            ),
        ) as client:
            started_at: dict[str, float] = {}

            async def reset(user_id: str) -> None:
                started_at[user_id] = time.time()
                await client.mfa.reset_for_users([user_id])

            async def was_applied(user_id: str) -> bool | None:
                # A reset bumps the user's ``modified`` time: if it moved since we sent it, the
                # write went through and must not be repeated.
                try:
                    user = await client.users.metadata(user_id)
                except APIError:
                    return None
                sent = started_at.get(user_id)
                if sent is None or user.modified is None:
                    return None
                # Same host here; against a real server allow for its clock offset.
                return user.modified.timestamp() >= sent

            passes: list[BatchSummary] = []
            for number in range(1, 4):
                if number == 3:
                    fake.controls.faults = None  # the faults stop; the last pass finishes the rest
                title = "pass 1" if number == 1 else f"pass {number} (resume)"
                summary = await run_pass(title, user_ids, reset, journal_path, was_applied, args)
                passes.append(summary)
                if summary.failed == 0 and summary.unknown == 0:
                    break
    applied = fake.ledger.keys("user.reset-mfa") & set(user_ids)
    duplicates = fake.ledger.duplicates("user.reset-mfa")
    counts = Journal(journal_path).counts()
    journal_done = {k for k, state in Journal(journal_path).read().items() if state == "done"}
    summary_table(passes, len(user_ids), applied, journal_done, len(duplicates), counts)


async def run_pass(
    title: str,
    user_ids: list[str],
    operation: Any,
    journal_path: Path,
    verify: Any,
    args: argparse.Namespace,
) -> BatchSummary:
    columns = (
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("done {task.fields[done]}  failed {task.fields[failed]}  unknown {task.fields[unknown]}"),
        TextColumn("{task.fields[rate]:.0f}/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(title, total=len(user_ids), done=0, failed=0, unknown=0, rate=0.0)

        def on_progress(p: BatchProgress) -> None:
            progress.update(
                task,
                completed=p.done + p.failed + p.skipped + p.unknown,
                done=p.done,
                failed=p.failed,
                unknown=p.unknown,
                rate=p.rate,
            )

        return await run_batch(
            user_ids,
            operation,
            concurrency=args.concurrency,
            journal=Journal(journal_path),
            on_progress=on_progress,
            progress_interval=0.1,
            verify_unknown=verify,
        )


def summary_table(
    passes: list[BatchSummary],
    total: int,
    applied: set[str],
    journal_done: set[str],
    duplicates: int,
    journal_counts: dict[str, int],
) -> None:
    table = Table(title="Batch summary")
    table.add_column("")
    for number in range(1, len(passes) + 1):
        table.add_column(f"pass {number}", justify="right")
    for field in ("done", "skipped", "failed", "unknown"):
        table.add_row(field, *(str(getattr(p, field)) for p in passes))
    table.add_row("throughput", *(f"{p.throughput:.0f}/s" for p in passes))
    console.print(table)
    first = passes[0]
    if first.failures_by_reason:
        reasons = Table(title="Failures in pass 1 (resumed later)")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, info in first.failures_by_reason.items():
            reasons.add_row(reason, str(getattr(info, "count", info)))
        console.print(reasons)
    done_not_applied = len(journal_done - applied)
    applied_not_done = len(applied - journal_done)
    ok = not duplicates and not done_not_applied and not applied_not_done and len(applied) == total
    verdict = "[green]nothing lost, nothing applied twice[/green]" if ok else "[red]MISMATCH[/red]"
    console.print(
        Panel(
            f"users: {total:,}   resets applied by the server: {len(applied):,}   "
            f"applied twice: {duplicates}\n"
            f"journal: {journal_counts}   done but not applied: {done_not_applied}   "
            f"applied but not done: {applied_not_done}\n{verdict}",
            title="Ledger check (the fake's record of applied writes against the journal)",
        )
    )


async def act_metalcloud(args: argparse.Namespace) -> None:
    console.rule("[bold cyan]5. MetalCloud: who lacks 2FA?")
    fake = MetalCloudFake()
    root = fake.add_user("root@example.com", "root-demo-pass", access_level="root")
    for n in range(args.metalcloud_users):
        secret = generate_base32_secret(20) if n % 3 == 0 else None
        fake.add_user(f"member{n:04d}@example.com", f"member-pass-{n}", totp_secret=secret)
    lacking: list[int] = []
    with serve(fake) as server:
        async with MetalCloudClient(server.base_url, api_key=root.api_key) as client:

            async def check(info: Any) -> Skip | None:
                user = await client.users.get(info.id)
                if user.authenticator_enabled:
                    return Skip("2FA enabled")
                lacking.append(user.id)
                return None

            summary = await run_batch(
                client.users.list(sort_by=["id:ASC"], page_size=100),
                check,
                key=lambda info: str(info.id),
                concurrency=args.concurrency,
            )
    console.print(
        f"Listed {summary.total} users page by page (100 per page) and checked each: "
        f"{len(lacking)} without 2FA, {summary.skipped} with it, {summary.failed} errors."
    )


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mfa-demo-") as tmp:
        workdir = Path(tmp)
        xmfa = XMfaFake()
        with serve(xmfa) as server:
            await act_enrol_and_login(server.base_url, xmfa, workdir)
        await act_batch(args, workdir)
        await act_metalcloud(args)
    console.rule(f"[bold green]Demo finished in {time.perf_counter() - started:.1f} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=3000, help="Quatrix users in the batch (default 3000)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05, help="fake latency in seconds (default 0.05)")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of faulty replies (default 0.1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--metalcloud-users", type=int, default=250)
    return parser.parse_args(argv)


if __name__ == "__main__":
    anyio.run(main, parse_args())
