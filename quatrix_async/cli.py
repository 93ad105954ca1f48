"""``quatrix-async``: log in, show the profile, enrol 2FA, and administer MFA for many users.

Needs the ``cli`` extra (``pip install 'mfa-sdks[cli]'``). Credentials come from the environment
(``QUATRIX_HOST``, ``QUATRIX_EMAIL``, ``QUATRIX_PASSWORD``, ``QUATRIX_TOTP_SECRET`` or
``QUATRIX_PIN``), from an owner-only config file (``--config``, ``QUATRIX_CONFIG`` or
``~/.config/quatrix-async/config.toml``; TOML or JSON, keys ``host``, ``email``, ``password``,
``totp_secret``, ``pin``, ``new_pin``, at the top level or under ``[quatrix]``), or from a prompt
with hidden input. Never from the command line. Without a TOTP secret the login's code is asked
for.

Exit codes: 0 everything done (or skipped), 1 some item failed or the API failed, 2 wrong usage
or credentials (including a refused second factor and a config file others can read),
130 interrupted.

::

    quatrix-async login
    quatrix-async profile --json
    quatrix-async mfa enrol
    quatrix-async mfa reset --csv users.csv --dry-run
    quatrix-async mfa reset --csv users.csv --concurrency 20 --rate 50 --journal reset.journal
    quatrix-async mfa remove --all --auth-type PIN --json
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
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
from mfa_common.errors import (
    AuthenticationError,
    InvalidInputError,
    MfaCodeRejectedError,
    PermissionDeniedError,
)
from mfa_common.otpauth import build_otpauth_uri
from mfa_common.secret import Secret

from .client import QuatrixClient
from .models import ProfileResp, UserResp

__all__ = ["UnknownUserError", "build_app", "main"]

TOOL = "quatrix-async"

SETTINGS = (
    Setting("host", "QUATRIX_HOST", prompt="Quatrix host (https://acme.quatrix.it)"),
    Setting("email", "QUATRIX_EMAIL", prompt="E-mail"),
    Setting("password", "QUATRIX_PASSWORD", secret=True, prompt="Password"),
    Setting("totp_secret", "QUATRIX_TOTP_SECRET", secret=True),
    Setting("pin", "QUATRIX_PIN", secret=True),
    Setting("new_pin", "QUATRIX_NEW_PIN", secret=True, prompt="PIN to set for the users"),
)

# POST /user/set-mfa requires a ``code`` even for 2FA; what the server does with it there is
# UNCONFIRMED (the fake ignores it), so a fixed, well-formed placeholder is sent.
_SET_2FA_PLACEHOLDER_CODE = "000000"
# Attempts at typing the code that confirms a new 2FA secret.
_ENROL_ATTEMPTS = 3


class UnknownUserError(InvalidInputError):
    """A CSV row names a user the account does not have (the item fails, the batch goes on)."""


class Action(str, Enum):
    """The batch MFA operations."""

    SET = "set"
    RESET = "reset"
    REMOVE = "remove"


class AuthTypeOption(str, Enum):
    """The factor a ``set``/``remove`` applies to."""

    TWO_FA = "2FA"
    PIN = "PIN"


@attrs.define
class State:
    """What the global options decided, shared by the commands of one invocation."""

    base_url: str | None = None
    config: Path | None = None
    allow_insecure_http: bool = False
    clock: Clock | None = None
    prompter: Prompter = attrs.field(factory=Prompter)


@attrs.frozen
class Target:
    """One CSV row or listed user: ``key`` is the journal key (the user id when known)."""

    key: str
    user: UserResp | None
    label: str


# --------------------------------------------------------------------------- plumbing


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_object(State)
    if obj is None:  # pragma: no cover - the callback always sets it
        raise CliError("internal: no state")
    return obj


def _normalize_host(host: str) -> str:
    host = host.strip()
    if "://" not in host:
        host = "https://" + host
    return host


def _settings(state: State) -> tuple[SettingsResolver, Settings]:
    resolver = SettingsResolver(
        SETTINGS,
        config_path=state.config,
        default_path=default_config_path(TOOL),
        section="quatrix",
        overrides={"host": state.base_url},
        prompter=state.prompter,
    )
    settings = resolver.resolve()
    for name in ("host", "email", "password"):
        resolver.require(settings, name)
    return resolver, settings


def _client(state: State, settings: Settings) -> tuple[QuatrixClient, InteractiveCodeProvider]:
    provider = InteractiveCodeProvider(
        totp_secret=settings.secret("totp_secret"),
        pin=settings.secret("pin"),
        prompter=state.prompter,
        clock=state.clock,
    )
    client = QuatrixClient(
        _normalize_host(settings.get("host") or ""),
        email=settings.get("email"),
        password=settings.secret("password"),
        code_provider=provider,
        clock=state.clock,
        allow_insecure_http=state.allow_insecure_http,
    )
    return client, provider


def _is_admin(profile: ProfileResp | UserResp) -> bool:
    value = profile.super_admin
    text = value.value if isinstance(value, Enum) else value
    return text not in (None, "", "N")


def _profile_dict(profile: ProfileResp) -> dict[str, Any]:
    return {
        "id": profile.id,
        "name": profile.name,
        "email": profile.email,
        "administrator": _is_admin(profile),
        "language": profile.language,
        "plan": profile.plan,
        "account_id": profile.account_id,
        "account_status": profile.account_status.value
        if isinstance(profile.account_status, Enum)
        else profile.account_status,
        "auth_methods": list(profile.auth_methods),
        "forced_auth": list(profile.forced_auth),
    }


# --------------------------------------------------------------------------- commands


_BASE_URL = typer.Option(
    None, "--base-url", "--host", help="Account host or API root (else QUATRIX_HOST or the config file)."
)
_CONFIG = typer.Option(
    None,
    "--config",
    envvar="QUATRIX_CONFIG",
    help="Owner-only TOML/JSON file with host, email, password, totp_secret or pin.",
)
_INSECURE = typer.Option(
    False, "--allow-insecure-http", help="Allow http:// (loopback test servers are allowed anyway)."
)
_SAVE_QR = typer.Option(None, "--save-qr", help="Also save the QR code PNG to this new file (owner-only).")
_SHOW_SECRET = typer.Option(
    False, "--show-secret", help="Also print the secret as text, for typing into an app by hand."
)
_AUTH_TYPE = typer.Option(AuthTypeOption.TWO_FA, "--auth-type", help="2FA or PIN.")


def _main_options(
    ctx: typer.Context,
    base_url: str | None = _BASE_URL,
    config: Path | None = _CONFIG,
    allow_insecure_http: bool = _INSECURE,
) -> None:
    """Quatrix from the command line: credentials from the environment, a config file or a prompt."""
    parent = ctx.obj if isinstance(ctx.obj, State) else State()
    ctx.obj = State(
        base_url=base_url,
        config=config,
        allow_insecure_http=allow_insecure_http,
        clock=parent.clock,
        prompter=parent.prompter,
    )


def login(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Log in (password, then the second factor), show who you are and which factor was used."""
    state = _state(ctx)

    async def run() -> int:
        _, settings = _settings(state)
        client, provider = _client(state, settings)
        async with client:
            await client.login()
            profile = await client.profile.get()
        info = {
            "host": str(client.base_url),
            "user": _profile_dict(profile),
            "second_factor": provider.describe(),
            "logged_out": True,
        }
        if json_out:
            emit_json(info)
        else:
            out = stdout_console()
            role = "administrator" if _is_admin(profile) else "user"
            out.print(f"Logged in to {client.base_url} as {profile.name or '-'} <{profile.email}> ({role})")
            out.print(f"Second factor: {provider.describe()}")
            out.print("Session closed (logged out).")
        return EXIT_OK

    run_command(run)


def profile(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the logged-in user's profile."""
    state = _state(ctx)

    async def run() -> int:
        _, settings = _settings(state)
        client, _ = _client(state, settings)
        async with client:
            data = _profile_dict(await client.profile.get())
        if json_out:
            emit_json(data)
        else:
            from rich.table import Table

            table = Table(title="Profile", show_header=False, title_justify="left")
            table.add_column("", style="bold")
            table.add_column("")
            for name, value in data.items():
                shown = (
                    ", ".join(value) if isinstance(value, list) else ("-" if value is None else str(value))
                )
                table.add_row(name, shown or "-")
            stdout_console().print(table)
        return EXIT_OK

    run_command(run)


def enrol(
    ctx: typer.Context,
    save_qr: Path | None = _SAVE_QR,
    show_secret: bool = _SHOW_SECRET,
) -> None:
    """Enrol two-factor authentication: draw the QR code, then confirm with a code from the app."""
    state = _state(ctx)

    async def run() -> int:
        _, settings = _settings(state)
        client, _ = _client(state, settings)
        out, err = stdout_console(), stderr_console()
        async with client:
            await client.login()
            me = await client.profile.get()
            generated = await client.profile.generate_2fa()
            uri: Secret[str] | None = generated.uri
            if uri is None and generated.secret is not None:
                uri = build_otpauth_uri(
                    secret=generated.secret, account=me.email or settings.get("email") or "", issuer="Quatrix"
                )
            if save_qr is not None:
                write_private_file(save_qr, generated.qr_png.reveal())
                err.print(f"QR code saved to {save_qr} (owner-only).")
            if uri is not None:
                out.print("Scan this QR code with your authenticator app:")
                out.print(render_qr(uri), markup=False, highlight=False)
            elif save_qr is None:
                raise CliError("the server sent the QR code only as an image: pass --save-qr PATH to get it")
            if show_secret and generated.secret is not None:
                out.print(f"Secret (keep it private): {generated.secret.reveal()}", markup=False)
            for attempt in range(1, _ENROL_ATTEMPTS + 1):
                code = state.prompter.ask("Code from your authenticator app", hide=True)
                try:
                    result = await client.profile.set_mfa("2FA", code)
                except MfaCodeRejectedError:
                    if attempt == _ENROL_ATTEMPTS:
                        raise
                    err.print("That code was not accepted; wait for the next one and try again.")
                    continue
                break
        closed = len(result.session_ids)
        out.print(f"Two-factor authentication is on for {me.email}.")
        if closed:
            out.print(f"{closed} other session(s) were closed by the server.")
        out.print("Log in next time with a code from the app (or set QUATRIX_TOTP_SECRET for scripts).")
        return EXIT_OK

    run_command(run)


# --------------------------------------------------------------------------- batch MFA


def _csv_column(path: Path) -> str:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except OSError as exc:
        raise CliError(f"cannot read {path} ({type(exc).__name__})") from None
    columns = [c.strip().lower() for c in header or []]
    for column in ("id", "email"):
        if column in columns:
            return column
    raise CliError(f"{path} needs a header row with an 'id' or 'email' column")


def _count_rows(path: Path) -> int:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def _csv_targets(
    path: Path, column: str, by_id: dict[str, UserResp], by_email: dict[str, UserResp]
) -> Iterator[Target]:
    """Stream the CSV: one target per distinct user (a repeated row is dropped)."""
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
        for row in reader:
            value = (row.get(column) or "").strip()
            if not value:
                continue
            user = by_id.get(value) if column == "id" else by_email.get(value.lower())
            key = user.id if user is not None and user.id else f"{column}:{value}"
            if key in seen:
                continue
            seen.add(key)
            yield Target(key=key, user=user, label=value)


def _skip_reason(action: Action, auth_type: str, user: UserResp, me: ProfileResp, force: bool) -> str | None:
    """Why ``user`` needs no change (None: it does). ``auth_methods`` / ``forced_auth`` in the user
    listing are UNCONFIRMED on the real server; ``--force`` ignores them."""
    if user.id == me.id:
        return "own account (use the profile commands)"
    if force:
        return None
    methods, forced = set(user.auth_methods), set(user.forced_auth)
    if action is Action.SET:
        if auth_type == "2FA" and "2FA" in methods and "2FA" in forced:
            return "2FA already set"
        return None
    if action is Action.RESET:
        return None if "2FA" in methods else "no 2FA to reset"
    return None if (auth_type in methods or auth_type in forced) else f"{auth_type} not enabled"


def _batch(
    ctx: typer.Context,
    action: Action,
    csv_path: Path | None,
    all_users: bool,
    auth_type: AuthTypeOption,
    dry_run: bool,
    concurrency: int,
    rate: float | None,
    journal: Path | None,
    json_out: bool,
    force: bool,
) -> None:
    state = _state(ctx)
    if (csv_path is None) == (not all_users):
        raise CliError("give either --csv PATH or --all")
    column = _csv_column(csv_path) if csv_path is not None else ""
    kind = auth_type.value if action is not Action.RESET else "2FA"

    async def run() -> int:
        resolver, settings = _settings(state)
        code: Secret[str] | None = None
        if action is Action.SET and not dry_run:
            if kind == "PIN":
                resolver.require(settings, "new_pin")
                code = settings.secret("new_pin")
            else:
                code = Secret(_SET_2FA_PLACEHOLDER_CODE)
        client, _ = _client(state, settings)
        err = stderr_console()
        async with client:
            await client.login()
            me = await client.profile.get()
            users = await client.users.list()
            by_id = {u.id: u for u in users if u.id}
            by_email = {u.email.lower(): u for u in users if u.email}
            if csv_path is not None:
                total = _count_rows(csv_path)
                targets: Any = _csv_targets(csv_path, column, by_id, by_email)
            else:
                total = len(by_id)
                targets = (Target(key=uid, user=u, label=u.email or uid) for uid, u in by_id.items())

            if dry_run:
                return _dry_run(action, kind, targets, me, force, json_out)

            async def operation(target: Target) -> Skip | None:
                if target.user is None or not target.user.id:
                    raise UnknownUserError(f"no user {target.label!r} in this account")
                reason = _skip_reason(action, kind, target.user, me, force)
                if reason is not None:
                    return Skip(reason)
                ids = [target.user.id]
                if action is Action.SET:
                    assert code is not None
                    await client.mfa.set_for_users(ids, kind, code)
                elif action is Action.RESET:
                    await client.mfa.reset_for_users(ids)
                else:
                    await client.mfa.remove_for_users(ids, kind)
                return None

            async def verify(target: Target) -> bool | None:
                """Whether an interrupted write took effect; None when it cannot be told (a
                reset or a PIN change leaves nothing visible to compare)."""
                if target.user is None or not target.user.id:
                    return None
                if action is Action.RESET or (action is Action.SET and kind == "PIN"):
                    return None
                now = await client.users.metadata(target.user.id)
                if action is Action.SET:
                    return "2FA" in now.forced_auth
                return kind not in now.auth_methods and kind not in now.forced_auth

            label = f"{action.value} {kind}" if action is not Action.RESET else "reset 2FA"
            with BatchProgressDisplay(label, total=total, enabled=not json_out, console=err) as display:
                summary = await run_batch(
                    targets,
                    operation,
                    key=lambda t: t.key,
                    concurrency=concurrency,
                    rate=rate,
                    journal=Journal(journal) if journal is not None else None,
                    on_progress=display,
                    verify_unknown=verify,
                    stop_on=(AuthenticationError, PermissionDeniedError),
                )
        return _report(summary, label, json_out, journal)

    run_command(run)


def _dry_run(action: Action, kind: str, targets: Any, me: ProfileResp, force: bool, json_out: bool) -> int:
    change: list[dict[str, Any]] = []
    skip: list[dict[str, Any]] = []
    unknown: list[str] = []
    for target in targets:
        if target.user is None:
            unknown.append(target.label)
            continue
        entry = {"id": target.user.id, "email": target.user.email}
        reason = _skip_reason(action, kind, target.user, me, force)
        if reason is None:
            change.append(entry)
        else:
            skip.append({**entry, "reason": reason})
    if json_out:
        emit_json(
            {
                "dry_run": True,
                "action": action.value,
                "auth_type": kind,
                "would_change": change,
                "would_skip": skip,
                "unknown_users": unknown,
            }
        )
    else:
        from rich.table import Table

        out = stdout_console()
        table = Table(title=f"Dry run: {action.value} {kind} (nothing is sent)", title_justify="left")
        table.add_column("id")
        table.add_column("email")
        table.add_column("plan")
        for entry in change:
            table.add_row(entry["id"], entry["email"] or "-", f"would {action.value} {kind}")
        for entry in skip:
            table.add_row(entry["id"], entry["email"] or "-", f"skip: {entry['reason']}")
        for label in unknown:
            table.add_row("-", label, "unknown user (would fail)")
        out.print(table)
        out.print(f"{len(change)} would change, {len(skip)} would be skipped, {len(unknown)} unknown.")
    return EXIT_FAILED if unknown else EXIT_OK


def _report(summary: BatchSummary, label: str, json_out: bool, journal: Path | None) -> int:
    if json_out:
        emit_json({"action": label, "ok": summary.ok, **summary.as_dict()})
    else:
        print_summary(stdout_console(), summary, title=f"mfa {label}")
        if not summary.ok and journal is not None:
            stderr_console().print(f"Re-run with --journal {journal} to retry what failed.")
    return exit_code_for(summary)


_CSV = typer.Option(None, "--csv", help="CSV with an 'id' or 'email' column.", dir_okay=False, exists=True)
_ALL = typer.Option(False, "--all", help="Every user of the account (except yourself).")
_DRY = typer.Option(False, "--dry-run", help="List what would change; send no write.")
_CONC = typer.Option(10, "--concurrency", min=1, max=500, help="Users processed at once.")
_RATE = typer.Option(None, "--rate", min=0.1, help="At most this many writes per second.")
_JOURNAL = typer.Option(None, "--journal", help="Journal file: re-run with it to resume.", dir_okay=False)
_JSON = typer.Option(False, "--json", help="Print a JSON summary on stdout (no progress bar).")
_FORCE = typer.Option(False, "--force", help="Apply to every user, ignoring their listed MFA state.")


def mfa_set(
    ctx: typer.Context,
    csv_path: Path | None = _CSV,
    all_users: bool = _ALL,
    auth_type: AuthTypeOption = _AUTH_TYPE,
    dry_run: bool = _DRY,
    concurrency: int = _CONC,
    rate: float | None = _RATE,
    journal: Path | None = _JOURNAL,
    json_out: bool = _JSON,
    force: bool = _FORCE,
) -> None:
    """Turn MFA on for users (2FA is then forced; PIN takes the PIN from QUATRIX_NEW_PIN or a prompt)."""
    _batch(
        ctx, Action.SET, csv_path, all_users, auth_type, dry_run, concurrency, rate, journal, json_out, force
    )


def mfa_reset(
    ctx: typer.Context,
    csv_path: Path | None = _CSV,
    all_users: bool = _ALL,
    dry_run: bool = _DRY,
    concurrency: int = _CONC,
    rate: float | None = _RATE,
    journal: Path | None = _JOURNAL,
    json_out: bool = _JSON,
    force: bool = _FORCE,
) -> None:
    """Wipe users' 2FA secrets: they set 2FA up again at their next login."""
    _batch(
        ctx,
        Action.RESET,
        csv_path,
        all_users,
        AuthTypeOption.TWO_FA,
        dry_run,
        concurrency,
        rate,
        journal,
        json_out,
        force,
    )


def mfa_remove(
    ctx: typer.Context,
    csv_path: Path | None = _CSV,
    all_users: bool = _ALL,
    auth_type: AuthTypeOption = _AUTH_TYPE,
    dry_run: bool = _DRY,
    concurrency: int = _CONC,
    rate: float | None = _RATE,
    journal: Path | None = _JOURNAL,
    json_out: bool = _JSON,
    force: bool = _FORCE,
) -> None:
    """Turn MFA off for users (refused by the server where it is forced for the account)."""
    _batch(
        ctx,
        Action.REMOVE,
        csv_path,
        all_users,
        auth_type,
        dry_run,
        concurrency,
        rate,
        journal,
        json_out,
        force,
    )


def build_app(*, clock: Clock | None = None, prompter: Prompter | None = None) -> typer.Typer:
    """The ``quatrix-async`` command tree. ``clock`` drives TOTP codes (tests share a FakeClock
    with the fake server); ``prompter`` asks for missing values (default: the terminal)."""
    app = typer.Typer(
        name=TOOL,
        help="Quatrix from the command line: login, profile, 2FA enrolment and batch MFA administration.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"obj": State(clock=clock, prompter=prompter or Prompter())},
    )
    app.callback()(_main_options)
    app.command("login")(cli_command(login))
    app.command("profile")(cli_command(profile))
    mfa = typer.Typer(
        help="Enrol your own 2FA, or set / reset / remove MFA for many users.", no_args_is_help=True
    )
    mfa.command("enrol")(cli_command(enrol))
    mfa.command("set")(cli_command(mfa_set))
    mfa.command("reset")(cli_command(mfa_reset))
    mfa.command("remove")(cli_command(mfa_remove))
    app.add_typer(mfa, name="mfa")
    return app


def main() -> None:
    """Entry point of the ``quatrix-async`` console script and ``python -m quatrix_async``."""
    build_app()(prog_name=TOOL)
