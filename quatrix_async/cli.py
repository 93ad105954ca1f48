"""``quatrix-async``: log in once, show the profile, enrol 2FA, and administer MFA for many users.

Needs the ``cli`` extra (``pip install 'mfa-sdks[cli]'``). Credentials come from the environment
(``QUATRIX_HOST``, ``QUATRIX_EMAIL``, ``QUATRIX_PASSWORD``, ``QUATRIX_TOTP_SECRET`` or
``QUATRIX_PIN``), from an owner-only config file (``--config``, ``QUATRIX_CONFIG`` or
``~/.config/quatrix-async/config.toml``; TOML or JSON, keys ``host``, ``email``, ``password``,
``totp_secret``, ``pin``, ``new_pin``, at the top level or under ``[quatrix]``), or from a prompt
with hidden input. Never from the command line. ``auth login`` saves the session, and later
commands reuse it (Quatrix allows about 15 logins per 15 minutes).

Unknown outcomes (the answer to a write was lost), per command: ``mfa set 2FA`` and ``mfa
remove`` are verified from the user's listed MFA state; ``mfa reset`` from the user's
``modified`` time (it moves on when the reset is applied; UNCONFIRMED on the real server, the
fake does so); ``mfa set PIN`` for a user who had a PIN already cannot be told, and is re-run
with ``--retry-unknown`` (setting the same PIN again is harmless). ``mfa reset`` is not
idempotent (a late repeat would wipe a secret the user has just set up), so it has no
``--retry-unknown``. These checks, writes and verifications are the jobs of
:mod:`quatrix_async.jobs`, run as batch jobs of the frame.

Exit codes: 0 everything done (or skipped), 1 some item failed or the API failed, 2 wrong usage
or credentials, 130 interrupted.

::

    quatrix-async auth login
    quatrix-async auth unblock-captcha      # after failed logins: the solved CAPTCHA's token
    quatrix-async profile --json
    quatrix-async users list --json id,email
    quatrix-async users get alice@acme.com
    quatrix-async mfa enrol
    quatrix-async mfa reset --csv users.csv --dry-run
    quatrix-async mfa reset --csv users.csv --plan reset.plan && quatrix-async apply reset.plan
    quatrix-async mfa remove --all --auth-type pin --json --yes
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mfa_common.cli import (
    ApiAdapter,
    BatchCommands,
    BatchJobAdapter,
    CliError,
    Identity,
    Login,
    Setting,
    ToolSpec,
    add_auth_commands,
    add_command,
    emit_json,
    entry_point,
    flag,
    new_group,
    read_csv_option,
    run_session,
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
from mfa_common.errors import InvalidInputError, MfaCodeRejectedError
from mfa_common.secret import Secret

if TYPE_CHECKING:
    # The SDK loads when a command runs: --help, --version and completion never import it.
    from mfa_common.cli import JobRun, SavedCredential, Session, Settings, State
    from mfa_common.cli.login import LoginSteps

    from .client import QuatrixClient
    from .jobs import UserRef
    from .models import LoginResult, ProfileResp, TwoFactorSecret, UserResp

__all__ = ["SPEC", "QuatrixAdapter", "build_app", "main"]

SPEC = ToolSpec(
    name="quatrix-async",
    section="quatrix",
    settings=(
        Setting("host", "QUATRIX_HOST", prompt="Quatrix host (https://acme.quatrix.it)"),
        Setting("email", "QUATRIX_EMAIL", prompt="E-mail"),
        Setting("password", "QUATRIX_PASSWORD", secret=True, prompt="Password"),
        Setting("totp_secret", "QUATRIX_TOTP_SECRET", secret=True),
        Setting("pin", "QUATRIX_PIN", secret=True),
        Setting("new_pin", "QUATRIX_NEW_PIN", secret=True, prompt="PIN to set for the users"),
        Setting("api_key", "QUATRIX_API_KEY", secret=True),
        Setting("captcha_token", "QUATRIX_CAPTCHA_TOKEN", secret=True, prompt="Token of the solved CAPTCHA"),
    ),
    url_setting="host",
    url_help="Account host or API root (else QUATRIX_HOST or the config file).",
    config_help="Owner-only TOML/JSON file with host, email, password, totp_secret or pin.",
    help="Quatrix from the command line: login, profile, 2FA enrolment and batch MFA administration.",
    # About 15 logins per 15 minutes (see the README); the fake enforces a configurable budget.
    login_budget=(15, 15 * 60.0),
)


class AuthTypeOption(str, Enum):
    """The factor a ``set``/``remove`` applies to."""

    TWO_FA = "2FA"
    PIN = "PIN"


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


class QuatrixAdapter(ApiAdapter["QuatrixClient"]):
    """How the frame builds, logs in and identifies a :class:`QuatrixClient`."""

    api_name = "Quatrix"
    captcha = True

    def new_client(self, state: State, url: str, **credentials: Any) -> QuatrixClient:
        from .client import QuatrixClient

        return QuatrixClient(url, **credentials, **self.client_options(state))

    def session_auth(self, secret: Secret[str]) -> Any:
        from mfa_common.auth import ApiKeyAuth

        from . import _constants as C

        # A session id travels as X-Auth-Token.
        return ApiKeyAuth(secret, header=C.AUTH_TOKEN_HEADER, scheme=None)

    async def sign_in(self, client: QuatrixClient, settings: Settings, steps: LoginSteps) -> Login:
        """``GET /session/login`` (Basic), then on a 207 the code on the partial session. This
        server ends the partial session when it rejects a code: the next code then needs a new
        password step, which is said, counted, and made with the password already given."""
        from mfa_common.errors import AuthenticationError, MfaCodeRejectedError

        email = settings.get("email") or ""
        password = settings.secret("password")
        assert password is not None
        step = await self._password_step(client, email, password, steps)
        partial = step.session_id
        assert partial is not None
        if step.kind == "logged_in":
            return _session_login(partial)
        assert step.challenge is not None
        auth_type = "PIN" if step.challenge.kind == "pin" else "2FA"

        async def send(code: Secret[str]) -> Secret[str]:
            nonlocal partial
            assert partial is not None
            try:
                answer = await client.session.login_mfa(partial, auth_type, code)
            except MfaCodeRejectedError:
                raise
            except AuthenticationError:
                # No login waits for a code any more (the last code was refused): start again.
                steps.say(
                    f"{steps.url} ended that login after the refused code: a new password step is "
                    "needed (it counts as a login)."
                )
                again = await self._password_step(client, email, password, steps)
                assert again.session_id is not None
                if again.kind == "logged_in":
                    return again.session_id
                partial = again.session_id
                answer = await client.session.login_mfa(partial, auth_type, code)
            # The session the answer names, else the partial one, now logged in.
            return answer.session_id or partial

        return _session_login(await steps.code(step.challenge, send))

    async def _password_step(
        self, client: QuatrixClient, email: str, password: Secret[str], steps: LoginSteps
    ) -> LoginResult:
        """The password step; a CAPTCHA block is solved with the token the command was given,
        or reported with what to do."""
        from .errors import CaptchaRejectedError

        step = await steps.password(lambda: client.session.login(email, password))
        if step.kind == "captcha":
            token = steps.captcha_token
            if token is None or step.session_id is None:
                raise CliError(
                    f"{steps.url} wants a CAPTCHA solved before {email} can log in again (after failed "
                    f"logins): log in once in a web browser and solve it there, or solve it and run  "
                    f"{steps.tool} auth unblock-captcha  with its token"
                )
            try:
                await client.session.unblock_captcha(token, session_id=step.session_id)
            except CaptchaRejectedError:
                raise CliError(
                    f"{steps.url} did not accept the CAPTCHA token: solve a new CAPTCHA and run  "
                    f"{steps.tool} auth unblock-captcha  again"
                ) from None
            steps.captcha_token = None
            steps.say("CAPTCHA solved. Logging in again (it counts as a login).")
            step = await steps.password(lambda: client.session.login(email, password))
            if step.kind == "captcha":
                raise CliError(f"{steps.url} still asks for a CAPTCHA: try again later")
        if step.kind not in ("logged_in", "mfa") or step.session_id is None:
            raise CliError(
                f"{steps.url} asks for a second factor this tool does not know (Mfa-Code {step.mfa_code})"
            )
        return step

    async def end_session(self, client: QuatrixClient, saved: SavedCredential) -> str:
        await client.session.logout()
        return "session ended on the server"

    async def identity(self, client: QuatrixClient) -> Identity:
        profile = await client.profile.get()
        return Identity(
            name=profile.name or "",
            email=profile.email or "",
            role="administrator" if _is_admin(profile) else "user",
            data=_profile_dict(profile),
        )


def _session_login(session_id: Secret[str]) -> Login:
    """A Quatrix session: it ends after the server's idle timeout (less a margin) unused."""
    from . import _constants as C

    return Login(
        kind="session", secret=session_id, idle_timeout=C.SESSION_IDLE_TIMEOUT - C.SESSION_IDLE_MARGIN
    )


ADAPTER = QuatrixAdapter()


# --------------------------------------------------------------------------- commands


def profile(ctx: typer.Context, json_out: bool = flag("Print JSON.", "--json")) -> None:
    """Show the logged-in user's profile."""

    async def run(session: Session[QuatrixClient]) -> int:
        data = _profile_dict(await session.client.profile.get())
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
        return 0

    run_session(ctx, ADAPTER, run)


# --------------------------------------------------------------------------- users

#: What ``users list`` and ``users get`` can print, and what the table shows by default.
USER_FIELDS = (
    "id",
    "email",
    "name",
    "administrator",
    "status",
    "auth_methods",
    "forced_auth",
    "language",
    "created",
    "modified",
    "last_login",
)
_USER_TABLE = ("id", "email", "name", "administrator", "auth_methods", "last_login")


def _user_record(user: UserResp) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "administrator": _is_admin(user),
        "status": user.status,
        "auth_methods": sorted(user.auth_methods),
        "forced_auth": sorted(user.forced_auth),
        "language": user.language,
        "created": _iso(user.created),
        "modified": _iso(user.modified),
        "last_login": _iso(user.last_login),
    }


def _iso(moment: datetime | None) -> str | None:
    """A model's datetime as JSON shows it."""
    return moment.isoformat() if moment is not None else None


def users_list(ctx: typer.Context, json_out: bool = JSON_OPTION, fields: str | None = FIELDS_OPTION) -> None:
    """List the account's users (needs an administrator): a table, or --json [FIELDS]."""
    chosen = choose_fields(fields, USER_FIELDS, USER_FIELDS if json_out else _USER_TABLE)

    async def run(session: Session[QuatrixClient]) -> int:
        # GET /user answers every user at once: the API has no pages.
        users = await session.client.users.list()
        await print_records((_user_record(u) for u in users), chosen, json_out=json_out, title="Users")
        return 0

    run_session(ctx, ADAPTER, run)


async def _find_user(client: QuatrixClient, user: str) -> dict[str, Any] | None:
    """``users get``: the user with this id, or with this e-mail address (None: no such user)."""
    from mfa_common.errors import BadRequestError, NotFoundError

    if "@" in user:
        wanted = user.strip().lower()
        found = next((u for u in await client.users.list() if (u.email or "").lower() == wanted), None)
        return _user_record(found) if found is not None else None
    try:
        return _user_record(await client.users.metadata(user.strip()))
    except (NotFoundError, BadRequestError):
        return None  # an unknown id: 404, or 400 code 20 on some servers


def _enrolment_uri(generated: TwoFactorSecret, account: str) -> tuple[Secret[str] | None, str]:
    """The ``otpauth://`` URI to draw: the server's, else one made from the secret it sent, else
    the one decoded from its QR image (the ``qr`` extra). Without one, why not."""
    from mfa_common.otpauth import build_otpauth_uri
    from mfa_common.qr_decode import QR_EXTRA_INSTALL, QrDecodeError, QrDecoderMissingError

    if generated.uri is not None:
        return generated.uri, ""
    if generated.secret is not None:
        return build_otpauth_uri(secret=generated.secret, account=account, issuer="Quatrix"), ""
    try:
        return generated.otpauth_uri(), ""
    except QrDecoderMissingError:
        why = "the server sent the QR code only as an image; to draw it here, install the qr extra"
        return None, f"{why} ({QR_EXTRA_INSTALL})"
    except (QrDecodeError, InvalidInputError):
        return None, "the server's QR image could not be decoded"


def enrol(ctx: typer.Context, save_qr: Path | None = SAVE_QR, show_secret: bool = SHOW_SECRET) -> None:
    """Enrol two-factor authentication: draw the QR code, then confirm with a code from the app."""

    async def run(session: Session[QuatrixClient]) -> int:
        client = session.client
        me = await client.profile.get()
        generated = await client.profile.generate_2fa()
        account = me.email or (session.settings.get("email") if session.settings else None) or ""
        uri, why = _enrolment_uri(generated, account)
        show_new_secret(
            uri, generated.qr_png, generated.secret, save_qr=save_qr, show_secret=show_secret, no_uri=why
        )
        result = await confirm_with_code(
            session.state, lambda code: client.profile.set_mfa("2FA", code), MfaCodeRejectedError
        )
        out = stdout_console()
        closed = len(result.session_ids)
        out.print(f"Two-factor authentication is on for {me.email}.")
        if closed:
            out.print(f"{closed} other session(s) were closed by the server.")
        out.print("Log in next time with a code from the app (or set QUATRIX_TOTP_SECRET for scripts).")
        return 0

    # The server sends the QR code only as an image (octet-stream): drawing it needs the qr extra.
    run_session(ctx, ADAPTER, run, preflight=enrol_preflight(save_qr, image_only=True))


# --------------------------------------------------------------------------- batch MFA


def _users(csv_path: Path | None, all_users: bool) -> Iterable[UserRef] | None:
    """The users of ``--csv`` (read and checked now: a bad row is a usage error before any
    login), or None for ``--all``."""
    if (csv_path is None) == (not all_users):
        raise CliError("give either --csv PATH or --all")
    if csv_path is None:
        return None
    if not csv_path.exists():
        return ()  # a saved plan being applied needs no CSV: it names its users by id
    from .jobs import parse_user_ref

    return read_csv_option(csv_path, parse_user_ref)


def _new_pin(run: JobRun[QuatrixClient], kind: str) -> Secret[str] | None:
    """The PIN ``mfa set --auth-type PIN`` sets (QUATRIX_NEW_PIN or a prompt, asked before a run
    that writes; a dry run needs none)."""
    return run.settings.secret("new_pin") if kind == "PIN" and run.settings is not None else None


_CSV = typer.Option(None, "--csv", help="CSV with an 'id' or 'email' column.", dir_okay=False, exists=True)
_ALL = flag("Every user of the account (except yourself).", "--all")
_AUTH_TYPE = typer.Option(AuthTypeOption.TWO_FA, "--auth-type", case_sensitive=False, help="2FA or PIN.")
_FORCE = flag("Apply to every user, ignoring their listed MFA state.", "--force")


def _register(app: typer.Typer) -> None:
    add_auth_commands(app, ADAPTER)
    add_command(app, "profile", profile)
    users = new_group("The account's users (needs an administrator).")
    add_record_command(users, "list", users_list, USER_FIELDS)
    add_record_command(users, "get", user_get_command(ADAPTER, USER_FIELDS, _find_user), USER_FIELDS)
    app.add_typer(users, name="users")
    mfa = new_group("Enrol your own 2FA, or set / reset / remove MFA for many users.")
    add_command(mfa, "enrol", enrol)
    batch = BatchCommands(ADAPTER)

    @batch.command(mfa, "set", path="mfa set", idempotent=True)
    def mfa_set(
        csv_path: Path | None = _CSV,
        all_users: bool = _ALL,
        auth_type: AuthTypeOption = _AUTH_TYPE,
        force: bool = _FORCE,
    ) -> BatchJobAdapter[Any]:
        """Turn MFA on for users (2FA is then forced; PIN takes the PIN from QUATRIX_NEW_PIN or a prompt)."""
        from .jobs import set_mfa_job

        users, kind = _users(csv_path, all_users), AuthTypeOption(auth_type).value
        return BatchJobAdapter(
            lambda run: set_mfa_job(run.client, kind, users, pin=_new_pin(run, kind), force=force),
            needs=("new_pin",) if kind == "PIN" else (),
        )

    @batch.command(mfa, "reset", path="mfa reset", idempotent=False)
    def mfa_reset(
        csv_path: Path | None = _CSV, all_users: bool = _ALL, force: bool = _FORCE
    ) -> BatchJobAdapter[Any]:
        """Wipe users' 2FA secrets: they set 2FA up again at their next login."""
        from .jobs import reset_mfa_job

        users = _users(csv_path, all_users)
        return BatchJobAdapter(lambda run: reset_mfa_job(run.client, users, force=force))

    @batch.command(mfa, "remove", path="mfa remove", idempotent=True)
    def mfa_remove(
        csv_path: Path | None = _CSV,
        all_users: bool = _ALL,
        auth_type: AuthTypeOption = _AUTH_TYPE,
        force: bool = _FORCE,
    ) -> BatchJobAdapter[Any]:
        """Turn MFA off for users (refused by the server where it is forced for the account)."""
        from .jobs import remove_mfa_job

        users, kind = _users(csv_path, all_users), AuthTypeOption(auth_type).value
        return BatchJobAdapter(lambda run: remove_mfa_job(run.client, kind, users, force=force))

    app.add_typer(mfa, name="mfa")
    batch.add_apply(app)


#: The command tree: ``build_app(clock=..., prompter=...)`` (see :func:`mfa_common.cli.build_app`).
build_app = partial(build_tool_app, SPEC, _register)
main = entry_point(SPEC, build_app)
