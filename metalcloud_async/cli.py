"""``metalcloud-async``: log in, show the current user, enrol 2FA, find and suspend users without 2FA.

Needs the ``cli`` extra (``pip install 'mfa-sdks[cli]'``). Credentials come from the environment
(``METALCLOUD_URL`` and ``METALCLOUD_API_KEY``, or ``METALCLOUD_EMAIL``, ``METALCLOUD_PASSWORD``
and optionally ``METALCLOUD_TOTP_SECRET``), from an owner-only config file (``--config``,
``METALCLOUD_CONFIG`` or ``~/.config/metalcloud-async/config.toml``; TOML or JSON, keys ``url``,
``api_key``, ``email``, ``password``, ``totp_secret``, at the top level or under
``[metalcloud]``), or from a prompt with hidden input. Never from the command line. An API key
wins over a password; with a password and no TOTP secret the 2FA code is asked for. ``auth
login`` saves the JWT (or the API key), and later commands reuse it until it expires.

Unknown outcomes: ``users suspend-without-2fa`` is verified (the user reads as suspended or
not), and is idempotent, so ``--retry-unknown`` is offered too. Each suspension sends the
revision it was planned from as ``If-Match``: a user changed since is refused by the server.

Exit codes: 0 everything done (or skipped), 1 some item failed or the API failed, 2 wrong usage
or credentials (including a refused second factor and a config file others can read),
130 interrupted.

::

    metalcloud-async auth login
    metalcloud-async whoami --json
    metalcloud-async users list --json id,email
    metalcloud-async users get 42
    metalcloud-async mfa enrol
    metalcloud-async users without-2fa
    metalcloud-async users suspend-without-2fa --dry-run
    metalcloud-async users suspend-without-2fa --plan suspend.plan
    metalcloud-async apply suspend.plan
    metalcloud-async users suspend-without-2fa --concurrency 20 --rate 20 --journal suspend.journal
    metalcloud-async users force-2fa-reenrol --csv lost-phones.csv --journal reenrol.journal
    metalcloud-async users force-2fa-reenrol --created-before 2024-01-01 --dry-run
    metalcloud-async users create --csv new-users.csv --plan create.plan
    metalcloud-async users ssh-keys add --csv keys.csv --yes
    metalcloud-async users limits set --csv limits.csv --yes --json

The four CSV/age jobs (``force-2fa-reenrol``, ``create``, ``ssh-keys add``, ``limits set``) run
the checks and writes of :mod:`metalcloud_async.jobs` as batch jobs of the frame: dry run,
plan and apply, confirmation, journal and resume. A bad CSV row is a usage error before
anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mfa_common.cli import (
    ApiAdapter,
    BatchCommands,
    BatchJobAdapter,
    Change,
    CliError,
    Identity,
    Job,
    Login,
    NoChange,
    Setting,
    ToolSpec,
    add_auth_commands,
    add_command,
    emit_json,
    entry_point,
    exit_code_for,
    flag,
    new_group,
    print_summary,
    read_csv_option,
    run_session,
    stderr_console,
    stdout_console,
)
from mfa_common.cli import build_app as build_tool_app
from mfa_common.cli.enrol import SAVE_QR, SHOW_SECRET, confirm_with_code, enrol_preflight, show_new_secret
from mfa_common.cli.listing import (
    FIELDS_OPTION,
    JSON_OPTION,
    add_record_command,
    choose_fields,
    print_records,
    user_get_command,
)
from mfa_common.cli.prompts import ask_off_loop
from mfa_common.errors import AuthenticationError, ConflictError, PermissionDeniedError

if TYPE_CHECKING:
    # The SDK loads when a command runs: --help, --version and completion never import it.
    from mfa_common.batch import CsvCells, Skip
    from mfa_common.cli import JobRun, SavedCredential, Session, Settings, State
    from mfa_common.cli.login import LoginSteps
    from mfa_common.secret import Secret

    from .client import MetalCloudClient
    from .models import LoginResult, TwoFactorAuthenticationSecret, User, UserInfo

__all__ = ["SPEC", "MetalCloudAdapter", "build_app", "main"]

SPEC = ToolSpec(
    name="metalcloud-async",
    section="metalcloud",
    settings=(
        Setting("url", "METALCLOUD_URL", prompt="MetalCloud URL (https://metal.example.com)"),
        Setting("api_key", "METALCLOUD_API_KEY", secret=True),
        Setting("email", "METALCLOUD_EMAIL", prompt="E-mail"),
        Setting("password", "METALCLOUD_PASSWORD", secret=True, prompt="Password"),
        Setting("totp_secret", "METALCLOUD_TOTP_SECRET", secret=True),
    ),
    url_setting="url",
    url_help="Server URL (else METALCLOUD_URL or the config file).",
    config_help="Owner-only TOML/JSON file with url, api_key or email, password, totp_secret.",
    help="MetalCloud from the command line: login, current user, 2FA enrolment, user administration.",
)

_DEFAULT_COMMENT = "Suspended: two-factor authentication is not enabled on this account."


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


class MetalCloudAdapter(ApiAdapter["MetalCloudClient"]):
    """How the frame builds, logs in and identifies a :class:`MetalCloudClient`."""

    api_name = "MetalCloud"

    def new_client(self, state: State, url: str, **credentials: Any) -> MetalCloudClient:
        from .client import MetalCloudClient

        return MetalCloudClient(url, **credentials, **self.client_options(state))

    def session_auth(self, secret: Secret[str]) -> Any:
        from mfa_common.auth import BearerTokenAuth

        return BearerTokenAuth(secret)

    async def sign_in(self, client: MetalCloudClient, settings: Settings, steps: LoginSteps) -> Login:
        """``POST /api/v2/login``, then ``login-2fa`` on the pending login, which stays open
        after a refused code (a new password step only once the server says none is pending)."""
        from mfa_common.auth import jwt_expiry
        from mfa_common.code_providers import MfaChallenge

        from .errors import TwoFactorCodeRejectedError

        email = settings.get("email") or ""
        password = settings.secret("password")
        assert password is not None
        step = await steps.password(lambda: client.session.login(email, password))
        if step.enrolment_required and step.token is not None:
            # The session serves nothing but enrolling the new authenticator an admin forced.
            return Login(kind="jwt", secret=step.token, expires_at=jwt_expiry(step.token), pending=step)
        if step.mfa_required:
            pending = step

            async def send(code: Secret[str]) -> LoginResult:
                nonlocal pending
                try:
                    return await client.session.login_2fa(pending, code)
                except TwoFactorCodeRejectedError as exc:
                    if "pending" not in (exc.server_message or "").lower():
                        raise
                steps.say(
                    f"{steps.url} no longer holds that login: a new password step is needed "
                    "(it counts as a login)."
                )
                pending = await steps.password(lambda: client.session.login(email, password))
                return await client.session.login_2fa(pending, code)

            step = await steps.code(MfaChallenge(kind="totp", user=email), send)
        if step.token is None:
            raise CliError(f"{steps.url} logged {email} in but sent no session token back")
        return Login(kind="jwt", secret=step.token, expires_at=jwt_expiry(step.token))

    def pending_message(self, state: State) -> str:
        return (
            "an administrator requires a new authenticator for this account: run  "
            f"{state.spec.name} mfa enrol  first"
        )

    async def end_session(self, client: MetalCloudClient, saved: SavedCredential) -> str:
        await client.session.logout(saved.secret)
        return "JWT session ended on the server"

    async def identity(self, client: MetalCloudClient) -> Identity:
        me = await client.user.get()
        return Identity(
            name=me.display_name or "",
            email=me.email or "",
            role=f"id {me.id}, access level {me.access_level or '-'}",
            data=_user_dict(me),
            warnings=("the server requires a password change for this account.",)
            if me.password_change_required
            else (),
        )


ADAPTER = MetalCloudAdapter()


#: What ``users list`` prints (the listing's fields) and ``users get`` (the whole user).
LIST_FIELDS = (
    "id",
    "email",
    "display_name",
    "access_level",
    "archived",
    "account_id",
    "created",
    "last_login",
)
_LIST_TABLE = ("id", "email", "display_name", "access_level", "last_login")
GET_FIELDS = (
    "id",
    "email",
    "display_name",
    "access_level",
    "two_factor_enabled",
    "suspended",
    "archived",
    "account_id",
    "last_login",
    "password_change_required",
)


def _listed_user(info: UserInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "email": info.email,
        "display_name": info.display_name,
        "access_level": info.access_level,
        "archived": info.is_archived,
        "account_id": info.account_id,
        "created": info.created_timestamp.isoformat() if info.created_timestamp else None,
        "last_login": info.last_login_timestamp.isoformat() if info.last_login_timestamp else None,
    }


def _show_user(user: User, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    for name, value in _user_dict(user).items():
        table.add_row(name, "-" if value is None else str(value))
    stdout_console().print(table)


# --------------------------------------------------------------------------- commands

_JSON = flag("Print JSON on stdout (no progress bar).", "--json")
_ARCHIVED = flag("Also look at archived users.", "--include-archived")
_CONC = typer.Option(10, "--concurrency", min=1, max=500, help="Users processed at once.")


def whoami(ctx: typer.Context, json_out: bool = _JSON) -> None:
    """Show the current user."""

    async def run(session: Session[MetalCloudClient]) -> int:
        me = await session.client.user.get()
        if json_out:
            emit_json(_user_dict(me))
        else:
            _show_user(me, "Current user")
        return 0

    run_session(ctx, ADAPTER, run)


def enrol(ctx: typer.Context, save_qr: Path | None = SAVE_QR, show_secret: bool = SHOW_SECRET) -> None:
    """Enrol two-factor authentication: draw the QR code, then enable it with a code from the app.

    MetalCloud issues no recovery codes: keep the secret's backup in your authenticator app
    (or use ``--save-qr``/``--show-secret`` and store it somewhere safe). When an administrator
    forced a new authenticator, this enrols it (the login gives a session for nothing else)."""

    def show(generated: TwoFactorAuthenticationSecret, account: str) -> None:
        uri = generated.totp(account=account).to_uri()
        show_new_secret(uri, generated.qr_png, generated.secret_2fa, save_qr=save_qr, show_secret=show_secret)

    from .errors import TwoFactorCodeRejectedError

    async def run(session: Session[MetalCloudClient]) -> int:
        client = session.client
        pending = session.login.pending if session.login is not None else None
        if pending is not None:
            email = (session.settings.get("email") if session.settings is not None else None) or "-"

            async def ask(generated: TwoFactorAuthenticationSecret) -> str:
                stderr_console().print("An administrator requires a new authenticator for this account.")
                show(generated, email)
                return await ask_off_loop(
                    session.state.prompter, "Code from your authenticator app", hide=True
                )

            await client.session.complete_reenrolment(pending, ask)
            stdout_console().print(
                f"A new authenticator is enrolled for {email}: log in with its codes from now on.",
                markup=False,
            )
            return 0
        me = await client.user.get()
        if me.authenticator_enabled:
            raise CliError(f"two-factor authentication is already on for {me.email}", 1)
        generated = await client.user.generate_2fa()
        show(generated, me.email or str(me.id))
        await confirm_with_code(session.state, client.user.enable_2fa, TwoFactorCodeRejectedError)
        out = stdout_console()
        out.print(f"Two-factor authentication is on for {me.email}.")
        out.print(
            "MetalCloud issues no recovery codes: keep a backup of the secret in your authenticator app."
        )
        return 0

    run_session(
        ctx, ADAPTER, run, preflight=enrol_preflight(save_qr, image_only=False), finishes_pending=True
    )


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

    from mfa_common.batch import Skip, run_batch
    from mfa_common.cli import BatchProgressDisplay

    async def run(session: Session[MetalCloudClient]) -> int:
        found: list[User] = []
        client = session.client

        async def check(info: UserInfo) -> Skip | None:
            user = await client.users.get(info.id)
            if user.authenticator_enabled:
                return Skip("2FA enabled")
            found.append(user)
            return None

        with BatchProgressDisplay("checking users", enabled=not json_out, console=stderr_console()) as bar:
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

    run_session(ctx, ADAPTER, run)


def users_list(
    ctx: typer.Context,
    include_archived: bool = _ARCHIVED,
    json_out: bool = JSON_OPTION,
    fields: str | None = FIELDS_OPTION,
) -> None:
    """List the users (needs an administrator), fetching pages as they are printed: a table, or
    --json [FIELDS]."""
    chosen = choose_fields(fields, LIST_FIELDS, LIST_FIELDS if json_out else _LIST_TABLE)

    async def run(session: Session[MetalCloudClient]) -> int:
        records = (_listed_user(info) async for info in _source(session.client, include_archived))
        await print_records(records, chosen, json_out=json_out, title="Users")
        return 0

    run_session(ctx, ADAPTER, run)


def _check_user(user: str) -> None:
    wanted = user.strip()
    if "@" not in wanted and not wanted.isdigit():
        raise CliError(f"{user!r} is neither a user id (a number) nor an e-mail address")


async def _find_user(client: MetalCloudClient, user: str) -> dict[str, Any] | None:
    """``users get``: the user with this id, or with this e-mail address (None: no such user)."""
    from mfa_common.errors import NotFoundError

    wanted = user.strip()
    user_id: int | None = int(wanted) if wanted.isdigit() else None
    if user_id is None:
        async for info in client.users.list(filters={"email": wanted}):
            if info.email.lower() == wanted.lower():
                user_id = info.id
                break
    if user_id is None:
        return None
    try:
        return _user_dict(await client.users.get(user_id))
    except NotFoundError:
        return None


def _suspension_state(user: User) -> dict[str, Any]:
    return {
        "revision": user.revision,
        "two_factor_enabled": user.authenticator_enabled,
        "suspended": user.is_suspended,
    }


class SuspendWithout2fa(Job["MetalCloudClient", "UserInfo"]):
    """Suspend every user without 2FA (never the caller)."""

    action = "suspend users without 2FA"

    def __init__(self, include_archived: bool, comment: str) -> None:
        self.include_archived = include_archived
        self.comment = comment

    async def start(self, run: JobRun[MetalCloudClient]) -> None:
        run.context["me"] = await run.client.user.get()

    def candidates(self, run: JobRun[MetalCloudClient]) -> Any:
        return _source(run.client, self.include_archived)

    def candidate_key(self, item: UserInfo) -> str:
        return str(item.id)

    async def plan(self, run: JobRun[MetalCloudClient], item: UserInfo) -> Change | NoChange:
        if item.id == run.context["me"].id:
            return NoChange(str(item.id), item.email or "", "own account")
        user = await run.client.users.get(item.id)
        if user.authenticator_enabled:
            return NoChange(str(user.id), user.email or "", "2FA enabled")
        if user.is_suspended:
            return NoChange(str(user.id), user.email or "", "already suspended")
        return Change(str(user.id), user.email or "", "suspend", _suspension_state(user))

    async def state(self, run: JobRun[MetalCloudClient], change: Change) -> dict[str, Any]:
        return _suspension_state(await run.client.users.get(int(change.key)))

    async def apply(self, run: JobRun[MetalCloudClient], change: Change) -> Skip | None:
        from mfa_common.batch import Skip

        try:
            # If-Match with the revision planned from: a user changed since is refused (412).
            await run.client.users.suspend(
                int(change.key), public_comment=self.comment, revision=int(change.before["revision"])
            )
        except ConflictError:
            return Skip("already suspended")
        return None

    async def verify(self, run: JobRun[MetalCloudClient], change: Change) -> bool | None:
        return (await run.client.users.get(int(change.key))).is_suspended


# --------------------------------------------------------------------------- admin batch jobs

_CSV: Any = typer.Option(None, "--csv", dir_okay=False, help="CSV file with a header row (one item per row).")


def _rows(path: Path | None, parse: Callable[[CsvCells], Any]) -> Iterable[Any]:
    """The CSV's items, checked whole before anything is sent (a bad row is a usage error)."""
    if path is None:
        raise CliError("--csv FILE is required")
    return read_csv_option(path, parse)


def _register(app: typer.Typer) -> None:
    add_auth_commands(app, ADAPTER)
    add_command(app, "whoami", whoami)
    mfa = new_group("Your own two-factor authentication.")
    add_command(mfa, "enrol", enrol)
    app.add_typer(mfa, name="mfa")
    users = new_group("User administration (needs an administrator).")
    add_record_command(users, "list", users_list, LIST_FIELDS)
    users_get = user_get_command(ADAPTER, GET_FIELDS, _find_user, check=_check_user)
    add_record_command(users, "get", users_get, GET_FIELDS)
    add_command(users, "without-2fa", without_2fa)
    batch = BatchCommands(ADAPTER)

    @batch.command(users, "suspend-without-2fa", path="users suspend-without-2fa", idempotent=True)
    def suspend_without_2fa(
        include_archived: bool = _ARCHIVED,
        comment: str = typer.Option(_DEFAULT_COMMENT, "--comment", help="Public comment of the suspension."),
    ) -> SuspendWithout2fa:
        """Suspend every user without two-factor authentication (never yourself)."""
        return SuspendWithout2fa(include_archived, comment)

    @batch.command(users, "force-2fa-reenrol", path="users force-2fa-reenrol", idempotent=True)
    def force_2fa_reenrol(
        csv_file: Path | None = _CSV,
        created_before: str | None = typer.Option(
            None,
            "--created-before",
            help="Instead of a CSV: every user whose authenticator is older (ISO date).",
        ),
    ) -> BatchJobAdapter[Any]:
        """Force users to enrol a new authenticator at their next login (CSV column: user, an id
        or an e-mail; or every user whose authenticator was created before a date)."""
        if (csv_file is None) == (created_before is None):
            raise CliError("give exactly one of --csv FILE and --created-before DATE")
        from . import jobs
        from .models import parse_timestamp

        rows = _rows(csv_file, jobs.parse_user_row) if csv_file is not None else None
        try:
            cutoff = parse_timestamp(created_before) if created_before is not None else None
        except ValueError:
            raise CliError(f"--created-before must be an ISO date, got {created_before!r}") from None
        return BatchJobAdapter(
            lambda run: jobs.force_reenrolment_job(run.client, rows=rows, created_before=cutoff)
        )

    @batch.command(users, "create", path="users create", idempotent=False)
    def create_users(csv_file: Path | None = _CSV) -> BatchJobAdapter[Any]:
        """Create users from a CSV (email, display_name[, access_level, account_id, email_verified]);
        existing e-mails are skipped, so a re-run never duplicates."""
        from . import jobs

        rows = _rows(csv_file, jobs.parse_new_user_row)
        return BatchJobAdapter(lambda run: jobs.create_users_job(run.client, rows))

    ssh_keys = new_group("Users' SSH keys.")

    @batch.command(ssh_keys, "add", path="users ssh-keys add", idempotent=True)
    def add_ssh_keys(csv_file: Path | None = _CSV) -> BatchJobAdapter[Any]:
        """Add SSH public keys from a CSV (user, ssh_key); keys a user has already are skipped."""
        from . import jobs

        rows = _rows(csv_file, jobs.parse_ssh_key_row)
        return BatchJobAdapter(lambda run: jobs.add_ssh_keys_job(run.client, rows))

    users.add_typer(ssh_keys, name="ssh-keys")
    limits = new_group("Users' resource limits.")

    @batch.command(limits, "set", path="users limits set", idempotent=True)
    def set_limits(csv_file: Path | None = _CSV) -> BatchJobAdapter[Any]:
        """Set user limits from a CSV (user, then one column per limit, e.g.
        infrastructure_active_max_count); limits already at those values are skipped."""
        from . import jobs

        rows = _rows(csv_file, jobs.parse_limits_row)
        return BatchJobAdapter(lambda run: jobs.set_limits_job(run.client, rows))

    users.add_typer(limits, name="limits")
    app.add_typer(users, name="users")
    batch.add_apply(app)


#: The command tree: ``build_app(clock=..., prompter=...)`` (see :func:`mfa_common.cli.build_app`).
build_app = partial(build_tool_app, SPEC, _register)
main = entry_point(SPEC, build_app)
