"""``metalcloud-async``: log in, show the current user, enrol 2FA, find and suspend users without 2FA.

Needs the ``cli`` extra (``pip install 'mfa-sdks[cli]'``). Credentials come from the environment
(``METALCLOUD_URL`` and ``METALCLOUD_API_KEY``, or ``METALCLOUD_EMAIL``, ``METALCLOUD_PASSWORD``
and optionally ``METALCLOUD_TOTP_SECRET``), from an owner-only config file (``--config``,
``METALCLOUD_CONFIG`` or ``~/.config/metalcloud-async/config.toml``; TOML or JSON, keys ``url``,
``api_key``, ``email``, ``password``, ``totp_secret``, at the top level or under
``[metalcloud]``), or from a prompt with hidden input. Never from the command line. An API key
wins over a password; with a password and no TOTP secret the 2FA code is asked for.

Exit codes: 0 everything done (or skipped), 1 some item failed or the API failed, 2 wrong usage
or credentials (including a refused second factor and a config file others can read),
130 interrupted.

::

    metalcloud-async login
    metalcloud-async whoami --json
    metalcloud-async mfa enrol
    metalcloud-async users without-2fa
    metalcloud-async users suspend-without-2fa --dry-run
    metalcloud-async users suspend-without-2fa --concurrency 20 --rate 20 --journal suspend.journal
    metalcloud-async users force-2fa-reenrol --csv lost-phones.csv --journal reenrol.journal
    metalcloud-async users force-2fa-reenrol --created-before 2024-01-01 --dry-run
    metalcloud-async users create --csv new-users.csv --journal create.journal
    metalcloud-async users ssh-keys add --csv keys.csv
    metalcloud-async users limits set --csv limits.csv --json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import attrs
import typer

from mfa_common.batch import BatchSummary, Journal, Skip, run_batch
from mfa_common.cli_support import (
    EXIT_FAILED,
    EXIT_OK,
    BatchProgressDisplay,
    CliError,
    InteractiveCodeProvider,
    Prompter,
    Setting,
    Settings,
    SettingsResolver,
    cli_command,
    default_config_path,
    emit_json,
    exit_code_for,
    print_summary,
    render_qr,
    run_command,
    stderr_console,
    stdout_console,
    write_private_file,
)
from mfa_common.clock import Clock
from mfa_common.errors import AuthenticationError, ConflictError, InvalidInputError, PermissionDeniedError

from . import admin_jobs
from .client import MetalCloudClient
from .errors import TwoFactorCodeRejectedError, TwoFactorEnrolmentRequiredError
from .models import TwoFactorAuthenticationSecret, User, UserInfo, parse_timestamp

__all__ = ["build_app", "main"]

TOOL = "metalcloud-async"

SETTINGS = (
    Setting("url", "METALCLOUD_URL", prompt="MetalCloud URL (https://metal.example.com)"),
    Setting("api_key", "METALCLOUD_API_KEY", secret=True),
    Setting("email", "METALCLOUD_EMAIL", prompt="E-mail"),
    Setting("password", "METALCLOUD_PASSWORD", secret=True, prompt="Password"),
    Setting("totp_secret", "METALCLOUD_TOTP_SECRET", secret=True),
)

_ENROL_ATTEMPTS = 3
_DEFAULT_COMMENT = "Suspended: two-factor authentication is not enabled on this account."


@attrs.define
class State:
    """What the global options decided, shared by the commands of one invocation."""

    base_url: str | None = None
    config: Path | None = None
    allow_insecure_http: bool = False
    clock: Clock | None = None
    prompter: Prompter = attrs.field(factory=Prompter)


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_object(State)
    if obj is None:  # pragma: no cover - the callback always sets it
        raise CliError("internal: no state")
    return obj


def _normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    return url


def _settings(state: State) -> Settings:
    resolver = SettingsResolver(
        SETTINGS,
        config_path=state.config,
        default_path=default_config_path(TOOL),
        section="metalcloud",
        overrides={"url": state.base_url},
        prompter=state.prompter,
    )
    settings = resolver.resolve()
    resolver.require(settings, "url")
    if not settings.has("api_key"):
        resolver.require(settings, "email")
        resolver.require(settings, "password")
    return settings


def _client(state: State, settings: Settings) -> tuple[MetalCloudClient, InteractiveCodeProvider | None]:
    url = _normalize_url(settings.get("url") or "")
    api_key = settings.secret("api_key")
    if api_key is not None:
        client = MetalCloudClient(
            url, api_key=api_key, clock=state.clock, allow_insecure_http=state.allow_insecure_http
        )
        return client, None
    provider = InteractiveCodeProvider(
        totp_secret=settings.secret("totp_secret"), prompter=state.prompter, clock=state.clock
    )
    client = MetalCloudClient(
        url,
        email=settings.get("email"),
        password=settings.secret("password"),
        code_provider=provider,
        clock=state.clock,
        allow_insecure_http=state.allow_insecure_http,
    )
    return client, provider


def _enum(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "access_level": user.access_level,
        "two_factor_enabled": user.authenticator_enabled,
        "suspended": user.is_suspended,
        "archived": user.is_archived,
        "account_id": user.account_id,
        "last_login": user.last_login_timestamp.isoformat() if user.last_login_timestamp else None,
        "password_change_required": user.password_change_required,
    }


def _show_user(user: User, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    for name, value in _user_dict(user).items():
        table.add_row(name, "-" if value is None else str(value))
    stdout_console().print(table)


# --------------------------------------------------------------------------- options

_BASE_URL = typer.Option(
    None, "--base-url", "--url", help="Server URL (else METALCLOUD_URL or the config file)."
)
_CONFIG = typer.Option(
    None,
    "--config",
    envvar="METALCLOUD_CONFIG",
    help="Owner-only TOML/JSON file with url, api_key or email, password, totp_secret.",
)
_INSECURE = typer.Option(
    False, "--allow-insecure-http", help="Allow http:// (loopback test servers are allowed anyway)."
)
_JSON = typer.Option(False, "--json", help="Print JSON on stdout (no progress bar).")
_SAVE_QR = typer.Option(None, "--save-qr", help="Also save the QR code PNG to this new file (owner-only).")
_SHOW_SECRET = typer.Option(
    False, "--show-secret", help="Also print the secret as text, for typing into an app by hand."
)
_ARCHIVED = typer.Option(False, "--include-archived", help="Also look at archived users.")
_DRY = typer.Option(False, "--dry-run", help="List who would be suspended; send no write.")
_CONC = typer.Option(10, "--concurrency", min=1, max=500, help="Users processed at once.")
_RATE = typer.Option(None, "--rate", min=0.1, help="At most this many users per second.")
_JOURNAL = typer.Option(None, "--journal", help="Journal file: re-run with it to resume.", dir_okay=False)
_COMMENT = typer.Option(_DEFAULT_COMMENT, "--comment", help="Public comment of the suspension.")


def _main_options(
    ctx: typer.Context,
    base_url: str | None = _BASE_URL,
    config: Path | None = _CONFIG,
    allow_insecure_http: bool = _INSECURE,
) -> None:
    """MetalCloud from the command line: credentials from the environment, a config file or a prompt."""
    parent = ctx.obj if isinstance(ctx.obj, State) else State()
    ctx.obj = State(
        base_url=base_url,
        config=config,
        allow_insecure_http=allow_insecure_http,
        clock=parent.clock,
        prompter=parent.prompter,
    )


# --------------------------------------------------------------------------- commands


def login(ctx: typer.Context, json_out: bool = _JSON) -> None:
    """Log in (API key, or password then the 2FA code), show who you are and how."""
    state = _state(ctx)

    async def run() -> int:
        settings = _settings(state)
        client, provider = _client(state, settings)
        async with client:
            if provider is not None:
                await client.auth.login()
            me = await client.user.get()
        method = "api key" if provider is None else "password"
        second = "n/a (API key)" if provider is None else provider.describe()
        if json_out:
            emit_json(
                {
                    "url": str(client.base_url),
                    "user": _user_dict(me),
                    "method": method,
                    "second_factor": second,
                }
            )
        else:
            out = stdout_console()
            out.print(f"Logged in to {client.base_url} as {me.display_name or '-'} <{me.email}> (id {me.id})")
            out.print(f"Method: {method}; second factor: {second}; access level: {me.access_level or '-'}")
            if provider is not None:
                out.print("Session closed (logged out).")
        if me.password_change_required:
            stderr_console().print("warning: the server requires a password change for this account.")
        return EXIT_OK

    run_command(run)


def whoami(ctx: typer.Context, json_out: bool = _JSON) -> None:
    """Show the current user."""
    state = _state(ctx)

    async def run() -> int:
        settings = _settings(state)
        client, _ = _client(state, settings)
        async with client:
            me = await client.user.get()
        if json_out:
            emit_json(_user_dict(me))
        else:
            _show_user(me, "Current user")
        return EXIT_OK

    run_command(run)


def enrol(ctx: typer.Context, save_qr: Path | None = _SAVE_QR, show_secret: bool = _SHOW_SECRET) -> None:
    """Enrol two-factor authentication: draw the QR code, then enable it with a code from the app.

    MetalCloud issues no recovery codes: keep the secret's backup in your authenticator app
    (or use ``--save-qr``/``--show-secret`` and store it somewhere safe). When an administrator
    forced a new authenticator, this enrols it (the login gives a session for nothing else)."""
    state = _state(ctx)

    def show(generated: TwoFactorAuthenticationSecret, account: str) -> None:
        uri = generated.totp(account=account).to_uri()
        if save_qr is not None:
            write_private_file(save_qr, generated.qr_png.reveal())
            stderr_console().print(f"QR code saved to {save_qr} (owner-only).")
        out = stdout_console()
        out.print("Scan this QR code with your authenticator app:")
        out.print(render_qr(uri), markup=False, highlight=False)
        if show_secret:
            out.print(f"Secret (keep it private): {generated.secret_2fa.reveal()}", markup=False)

    async def run() -> int:
        settings = _settings(state)
        client, _ = _client(state, settings)
        out, err = stdout_console(), stderr_console()
        async with client:
            try:
                me = await client.user.get()
            except TwoFactorEnrolmentRequiredError as pending:
                email = settings.get("email") or "-"

                async def ask(generated: TwoFactorAuthenticationSecret) -> str:
                    err.print("An administrator requires a new authenticator for this account.")
                    show(generated, email)
                    return state.prompter.ask("Code from your authenticator app", hide=True)

                await client.auth.complete_reenrolment(pending, ask)
                out.print(f"A new authenticator is enrolled for {email}: log in with its codes from now on.")
                return EXIT_OK
            if me.authenticator_enabled:
                raise CliError(f"two-factor authentication is already on for {me.email}", EXIT_FAILED)
            generated = await client.user.generate_2fa()
            show(generated, me.email or settings.get("email") or str(me.id))
            for attempt in range(1, _ENROL_ATTEMPTS + 1):
                code = state.prompter.ask("Code from your authenticator app", hide=True)
                try:
                    await client.user.enable_2fa(code)
                except TwoFactorCodeRejectedError:
                    if attempt == _ENROL_ATTEMPTS:
                        raise
                    err.print("That code was not accepted; wait for the next one and try again.")
                    continue
                break
        out.print(f"Two-factor authentication is on for {me.email}.")
        out.print(
            "MetalCloud issues no recovery codes: keep a backup of the secret in your authenticator app."
        )
        return EXIT_OK

    run_command(run)


def _source(client: MetalCloudClient, include_archived: bool) -> Any:
    filters: dict[str, Any] = {} if include_archived else {"archived": False}
    return client.users.list(filters=filters)


def without_2fa(
    ctx: typer.Context,
    include_archived: bool = _ARCHIVED,
    concurrency: int = _CONC,
    json_out: bool = _JSON,
) -> None:
    """Report the users that have no two-factor authentication (a table, or --json)."""
    state = _state(ctx)

    async def run() -> int:
        settings = _settings(state)
        client, _ = _client(state, settings)
        found: list[User] = []
        async with client:

            async def check(info: UserInfo) -> Skip | None:
                user = await client.users.get(info.id)
                if user.authenticator_enabled:
                    return Skip("2FA enabled")
                found.append(user)
                return None

            with BatchProgressDisplay(
                "checking users", enabled=not json_out, console=stderr_console()
            ) as bar:
                summary = await run_batch(
                    _source(client, include_archived),
                    check,
                    key=lambda info: str(info.id),
                    concurrency=concurrency,
                    on_progress=bar,
                    stop_on=(AuthenticationError, PermissionDeniedError),
                )
        found.sort(key=lambda u: u.id)
        rows = [_user_dict(u) for u in found]
        if json_out:
            emit_json(
                {
                    "users": rows,
                    "count": len(rows),
                    "checked": summary.total,
                    "errors": summary.failed + summary.unknown,
                    "complete": summary.ok,
                }
            )
        else:
            from rich.table import Table

            table = Table(title="Users without two-factor authentication", title_justify="left")
            for column in ("id", "email", "name", "access level", "suspended"):
                table.add_column(column)
            for row in rows:
                table.add_row(
                    str(row["id"]),
                    row["email"],
                    row["display_name"],
                    row["access_level"] or "-",
                    "yes" if row["suspended"] else "no",
                )
            out = stdout_console()
            out.print(table)
            out.print(f"{len(rows)} of {summary.total} users have no 2FA.")
            if not summary.ok:
                print_summary(stderr_console(), summary, title="Some users could not be checked")
        return exit_code_for(summary)

    run_command(run)


def suspend_without_2fa(
    ctx: typer.Context,
    dry_run: bool = _DRY,
    include_archived: bool = _ARCHIVED,
    comment: str = _COMMENT,
    concurrency: int = _CONC,
    rate: float | None = _RATE,
    journal: Path | None = _JOURNAL,
    json_out: bool = _JSON,
) -> None:
    """Suspend every user without two-factor authentication (never yourself)."""
    state = _state(ctx)

    async def run() -> int:
        settings = _settings(state)
        client, _ = _client(state, settings)
        would: list[User] = []
        async with client:
            me = await client.user.get()

            async def suspend(info: UserInfo) -> Skip | None:
                if info.id == me.id:
                    return Skip("own account")
                user = await client.users.get(info.id)
                if user.authenticator_enabled:
                    return Skip("2FA enabled")
                if user.is_suspended:
                    return Skip("already suspended")
                if dry_run:
                    would.append(user)
                    return None
                try:
                    # If-Match with the revision just read: nothing changed since the check.
                    await client.users.suspend(user.id, public_comment=comment, revision=user.revision)
                except ConflictError:
                    return Skip("already suspended")
                return None

            async def verify(info: UserInfo) -> bool | None:
                """Whether an interrupted suspension took effect."""
                return (await client.users.get(info.id)).is_suspended

            label = "checking users (dry run)" if dry_run else "suspending users without 2FA"
            with BatchProgressDisplay(label, enabled=not json_out, console=stderr_console()) as bar:
                summary = await run_batch(
                    _source(client, include_archived),
                    suspend,
                    key=lambda info: str(info.id),
                    concurrency=concurrency,
                    rate=rate,
                    journal=Journal(journal) if journal is not None and not dry_run else None,
                    on_progress=bar,
                    verify_unknown=verify,
                    stop_on=(AuthenticationError, PermissionDeniedError),
                )
        if dry_run:
            return _dry_run_report(would, summary, json_out)
        return _report(summary, json_out, journal)

    run_command(run)


def _dry_run_report(would: list[User], summary: BatchSummary, json_out: bool) -> int:
    would.sort(key=lambda u: u.id)
    rows = [{"id": u.id, "email": u.email, "display_name": u.display_name} for u in would]
    if json_out:
        emit_json(
            {
                "dry_run": True,
                "would_suspend": rows,
                "count": len(rows),
                "checked": summary.total,
                "skipped_by_reason": dict(summary.skipped_by_reason),
                "errors": summary.failed + summary.unknown,
            }
        )
    else:
        from rich.table import Table

        table = Table(title="Dry run: would suspend (nothing is sent)", title_justify="left")
        for column in ("id", "email", "name"):
            table.add_column(column)
        for row in rows:
            table.add_row(str(row["id"]), str(row["email"]), str(row["display_name"]))
        out = stdout_console()
        out.print(table)
        out.print(f"{len(rows)} would be suspended, {summary.skipped} skipped, of {summary.total} checked.")
    return exit_code_for(summary)


def _report(summary: BatchSummary, json_out: bool, journal: Path | None) -> int:
    if json_out:
        emit_json({"action": "suspend users without 2FA", "ok": summary.ok, **summary.as_dict()})
    else:
        print_summary(stdout_console(), summary, title="Suspend users without 2FA")
        if not summary.ok and journal is not None:
            stderr_console().print(f"Re-run with --journal {journal} to retry what failed.")
    return exit_code_for(summary)


# --------------------------------------------------------------------------- admin batch jobs
# Thin wrappers: the jobs themselves (CSV rows, checks, writes, verification) are in
# metalcloud_async.admin_jobs.

_CSV = typer.Option(None, "--csv", help="CSV file with a header row (one item per row).", dir_okay=False)
_PLAN = typer.Option(False, "--dry-run", help="Show what would change; send no write.")


def _run_job(
    ctx: typer.Context,
    build: Callable[[MetalCloudClient], admin_jobs.AdminJob[Any]],
    *,
    dry_run: bool,
    concurrency: int,
    rate: float | None,
    journal: Path | None,
    json_out: bool,
) -> None:
    state = _state(ctx)

    async def run() -> int:
        settings = _settings(state)
        client, _ = _client(state, settings)
        async with client:
            job = build(client)
            label = f"{job.name} (dry run)" if dry_run else job.name
            with BatchProgressDisplay(label, enabled=not json_out, console=stderr_console()) as bar:
                result = await admin_jobs.run_admin_job(
                    job, dry_run=dry_run, concurrency=concurrency, rate=rate, journal=journal, on_progress=bar
                )
        if json_out:
            emit_json(result.as_dict())
            return exit_code_for(result.summary)
        out = stdout_console()
        for change in result.planned:
            out.print(json.dumps(change, sort_keys=True, default=str), markup=False, highlight=False)
        if dry_run:
            out.print(f"Dry run: {len(result.planned)} would change; nothing was sent.")
        print_summary(out, result.summary, title=label)
        if not result.summary.ok and journal is not None:
            stderr_console().print(f"Re-run with --journal {journal} to resume.")
        return exit_code_for(result.summary)

    run_command(run)


def _rows(path: Path | None, parse: Callable[[dict[str, str]], Any]) -> Any:
    """The CSV's items, checked whole before anything is sent (a bad row is a usage error)."""
    if path is None:
        raise CliError("--csv FILE is required")
    try:
        return admin_jobs.read_csv(path, parse)
    except InvalidInputError as exc:
        raise CliError(str(exc)) from None


def force_2fa_reenrol(
    ctx: typer.Context,
    csv_file: Path | None = _CSV,
    created_before: str | None = typer.Option(
        None, "--created-before", help="Instead of a CSV: every user whose authenticator is older (ISO date)."
    ),
    dry_run: bool = _PLAN,
    concurrency: int = _CONC,
    rate: float | None = _RATE,
    journal: Path | None = _JOURNAL,
    json_out: bool = _JSON,
) -> None:
    """Force users to enrol a new authenticator at their next login (CSV column: user)."""
    if (csv_file is None) == (created_before is None):
        raise CliError("give exactly one of --csv FILE and --created-before DATE")
    rows = _rows(csv_file, admin_jobs.parse_user_row) if csv_file is not None else None
    try:
        cutoff = parse_timestamp(created_before) if created_before is not None else None
    except ValueError:
        raise CliError(f"--created-before must be an ISO date, got {created_before!r}") from None
    _run_job(
        ctx,
        lambda c: admin_jobs.force_reenrolment_job(c, rows=rows, created_before=cutoff),
        dry_run=dry_run,
        concurrency=concurrency,
        rate=rate,
        journal=journal,
        json_out=json_out,
    )


def _csv_job_command(
    parse: Callable[[dict[str, str]], Any],
    build: Callable[[MetalCloudClient, Any], admin_jobs.AdminJob[Any]],
    doc: str,
) -> Callable[..., None]:
    """A ``--csv FILE`` batch command: the rows, checked whole, go to the job ``build`` makes."""

    def command(
        ctx: typer.Context,
        csv_file: Path | None = _CSV,
        dry_run: bool = _PLAN,
        concurrency: int = _CONC,
        rate: float | None = _RATE,
        journal: Path | None = _JOURNAL,
        json_out: bool = _JSON,
    ) -> None:
        rows = _rows(csv_file, parse)
        _run_job(
            ctx,
            lambda client: build(client, rows),
            dry_run=dry_run,
            concurrency=concurrency,
            rate=rate,
            journal=journal,
            json_out=json_out,
        )

    command.__doc__ = doc
    return command


create_users = _csv_job_command(
    admin_jobs.parse_new_user_row,
    admin_jobs.create_users_job,
    """Create users from a CSV (email, display_name[, access_level, account_id, email_verified]);
    existing e-mails are skipped, so a re-run never duplicates.""",
)
add_ssh_keys = _csv_job_command(
    admin_jobs.parse_ssh_key_row,
    admin_jobs.add_ssh_keys_job,
    "Add SSH public keys from a CSV (user, ssh_key); keys a user has already are skipped.",
)
set_limits = _csv_job_command(
    admin_jobs.parse_limits_row,
    admin_jobs.set_limits_job,
    "Set user limits from a CSV (user, then one column per limit, e.g. infrastructure_active_max_count).",
)


def build_app(*, clock: Clock | None = None, prompter: Prompter | None = None) -> typer.Typer:
    """The ``metalcloud-async`` command tree. ``clock`` drives TOTP codes (tests share a FakeClock
    with the fake server); ``prompter`` asks for missing values (default: the terminal)."""
    app = typer.Typer(
        name=TOOL,
        help="MetalCloud from the command line: login, current user, 2FA enrolment, users without 2FA.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"obj": State(clock=clock, prompter=prompter or Prompter())},
    )
    app.callback()(_main_options)
    app.command("login")(cli_command(login))
    app.command("whoami")(cli_command(whoami))
    mfa = typer.Typer(help="Your own two-factor authentication.", no_args_is_help=True)
    mfa.command("enrol")(cli_command(enrol))
    app.add_typer(mfa, name="mfa")
    users = typer.Typer(help="User administration (needs an administrator).", no_args_is_help=True)
    users.command("without-2fa")(cli_command(without_2fa))
    users.command("suspend-without-2fa")(cli_command(suspend_without_2fa))
    users.command("force-2fa-reenrol")(cli_command(force_2fa_reenrol))
    users.command("create")(cli_command(create_users))
    ssh_keys = typer.Typer(help="Users' SSH keys.", no_args_is_help=True)
    ssh_keys.command("add")(cli_command(add_ssh_keys))
    users.add_typer(ssh_keys, name="ssh-keys")
    limits = typer.Typer(help="Users' resource limits.", no_args_is_help=True)
    limits.command("set")(cli_command(set_limits))
    users.add_typer(limits, name="limits")
    app.add_typer(users, name="users")
    return app


def main() -> None:
    """Entry point of the ``metalcloud-async`` console script and ``python -m metalcloud_async``."""
    build_app()(prog_name=TOOL)
