"""How a tool gets a logged-in client: a saved session when there is one, else a login.

An API plugs in with an :class:`ApiAdapter` (how to build its client without credentials, with
an API key or with a saved credential; how to drive its password login; how to log out; who the
caller is). :func:`prepare` runs before the event loop starts, so that the settings' prompts
(host, e-mail, password) never block it, and it checks every local precondition and that the
server answers before anything is asked or any login is spent. :func:`open_session` then logs in
step by step (:mod:`.login`: a mistyped code is asked again) and runs the command with the
session the login made, which it ends on the server afterwards unless it is being kept.

:func:`add_auth_commands` gives every tool ``auth login``, ``auth status``, ``auth logout``
(and ``login`` as a short alias of ``auth login``), and ``auth unblock-captcha`` where the API
blocks logins behind a CAPTCHA.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

import attrs
import typer

from .._files import StateFile, locked_beside
from ..errors import APIConnectionError, APIError, AuthenticationError, InsecureTransportError, MfaError
from .app import State, add_command, new_group, run_command, state_of, step_registry
from .credentials import LOCK_WAIT_SECONDS, CredentialKind, CredentialStore, SavedCredential
from .errors import EXIT_FAILED, EXIT_OK, CliError, describe_error, exit_code_for_error
from .login import LoginSteps
from .output import emit_json, stderr_console, stdout_console
from .prompts import InteractiveCodeProvider
from .settings import Settings, ensure_state_dir

if TYPE_CHECKING:
    from ..secret import Secret

__all__ = [
    "ApiAdapter",
    "Identity",
    "Login",
    "Prepared",
    "Session",
    "add_auth_commands",
    "open_session",
    "prepare",
    "run_session",
]

ClientT = TypeVar("ClientT")

_LOGINS_FILE = "logins.json"
# The login record's format: {"format": 2, "logins": {"<url> <user>": [unix times]}}. Format 1
# (one list of times for every server and user) is read as empty: it names no server.
_LOGINS_FORMAT = 2
# A few recent login times per server and user: small.
_MAX_LOGINS_BYTES = 256 * 1024
#: Seconds a logout at the end of a command may take (it is best effort).
_LOGOUT_TIMEOUT = 10.0


@attrs.frozen
class Identity:
    """Who the credential belongs to, for messages: ``data`` is the JSON form of the user and
    ``warnings`` what the account needs done (printed on stderr by ``auth login``/``status``)."""

    name: str
    email: str
    role: str
    data: dict[str, Any]
    warnings: tuple[str, ...] = ()


@attrs.frozen
class Login:
    """A credential a login produced (or an API key given), to save for later commands.

    ``pending`` is a login step the command still has to finish (MetalCloud's forced
    re-enrolment: the session serves nothing but enrolling a new authenticator)."""

    kind: CredentialKind
    secret: Secret[str] = attrs.field(repr=False)
    expires_at: float | None = None
    idle_timeout: float | None = None
    pending: Any = attrs.field(default=None, repr=False)


class ApiAdapter(Generic[ClientT]):
    """What the frame needs to know about one API; subclass it once per tool."""

    #: The API's name in messages ("Quatrix").
    api_name: str = "the API"
    #: Whether the API blocks logins behind a CAPTCHA (then ``auth unblock-captcha`` exists).
    captcha: bool = False

    def normalize_url(self, raw: str) -> str:
        """The canonical form of the URL the user gave (also the key of saved sessions):
        no trailing slash, ``https://`` when no scheme was given."""
        from .._httpx import URL

        url = raw.strip().rstrip("/")
        url = url if "://" in url else "https://" + url
        try:
            parsed = URL(url)
        except Exception:  # httpx's own InvalidURL, or a ValueError
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host or " " in url:
            raise CliError(f"{raw.strip()!r} is not a server URL (give e.g. https://host.example.com)")
        return url

    def required(self, settings: Settings) -> tuple[str, ...]:
        """The settings a fresh login needs, given those already known (asked for when missing):
        none with an API key, else the e-mail and password."""
        return () if settings.has("api_key") else ("email", "password")

    def logs_in(self, settings: Settings) -> bool:
        """Whether ``settings`` lead to a password login (an API key does not)."""
        return not settings.has("api_key")

    def client_options(self, state: State) -> dict[str, Any]:
        """The client keywords every tool passes (the clock, ``--allow-insecure-http``)."""
        from ..options import ClientOptions

        return {"clock": state.clock, "options": ClientOptions(allow_insecure_http=state.allow_insecure_http)}

    def new_client(self, state: State, url: str, **credentials: Any) -> ClientT:
        """A client of ``url`` with ``credentials`` (the client's own keywords: none,
        ``api_key=`` or ``auth=``) and :meth:`client_options`."""
        raise NotImplementedError

    def session_auth(self, secret: Secret[str]) -> Any:
        """The auth backend that sends ``secret``, a session credential a login made."""
        raise NotImplementedError

    def bare_client(self, state: State, url: str) -> ClientT:
        """A client without credentials: the server check and the login steps."""
        return self.new_client(state, url)

    def key_client(self, state: State, url: str, settings: Settings) -> ClientT:
        """A client that sends the API key of ``settings``."""
        return self.new_client(state, url, api_key=settings.secret("api_key"))

    def saved_client(self, state: State, url: str, saved: SavedCredential) -> ClientT:
        """A client that sends the credential (saved, or made by this command's login)."""
        if saved.kind == "api_key":
            return self.new_client(state, url, api_key=saved.secret)
        return self.new_client(state, url, auth=self.session_auth(saved.secret))

    async def sign_in(self, client: ClientT, settings: Settings, steps: LoginSteps) -> Login:
        """The password login by hand on ``client`` (a bare one), through ``steps``."""
        raise NotImplementedError

    def pending_message(self, state: State) -> str:
        """What to do when a login left a step only another command finishes."""
        return f"the login is not complete: see  {state.spec.name} --help"

    async def logout(self, client: ClientT, saved: SavedCredential) -> str:
        """End the credential's session on the server; say what was done."""
        if saved.kind == "api_key":
            return "an API key has no session to end"
        return await self.end_session(client, saved)

    async def end_session(self, client: ClientT, saved: SavedCredential) -> str:
        """End the session ``saved`` holds (not an API key) on the server; say what was done."""
        raise NotImplementedError

    async def identity(self, client: ClientT) -> Identity:
        """Who the client acts as (one API call)."""
        raise NotImplementedError

    async def close(self, client: ClientT) -> None:
        """Close the client."""
        await client.aclose()  # type: ignore[attr-defined]


@attrs.frozen
class Prepared:
    """The outcome of :func:`prepare`: the URL and either a saved credential or the settings."""

    url: str
    saved: SavedCredential | None
    settings: Settings | None


@attrs.define
class Session(Generic[ClientT]):
    """An open client, how it is authenticated, and (for a login) what answered the second
    factor and the credential the login made."""

    client: ClientT
    url: str
    saved: SavedCredential | None
    settings: Settings | None
    provider: InteractiveCodeProvider | None
    state: State
    login: Login | None = None


def _url_of(state: State, adapter: ApiAdapter[Any], settings: Settings, saved_urls: list[str]) -> str | None:
    raw = settings.get(state.spec.url_setting)
    if raw:
        return adapter.normalize_url(raw)
    if len(saved_urls) == 1:
        return saved_urls[0]
    return None


def _saved(
    state: State, adapter: ApiAdapter[Any], store: CredentialStore
) -> tuple[str | None, SavedCredential | None]:
    """The URL these settings name (or the only saved one) and its saved credential, if any."""
    url = _url_of(state, adapter, state.resolver().resolve(), store.urls())
    state.url = url
    return url, (store.get(url, now=state.now()) if url is not None else None)


def check_server(state: State, adapter: ApiAdapter[Any], url: str) -> None:
    """Before any prompt or login: one request that needs no credentials. Any answer of the API
    (a 401 included) passes; no answer, or one that is not the API's, is a one-line error that
    names the server, and nothing was asked or spent."""
    import anyio

    from ..client import check_transport_security

    try:
        check_transport_security(url, allow_insecure_http=state.allow_insecure_http)
    except InsecureTransportError as exc:
        raise CliError(describe_error(exc, server=url), exit_code_for_error(exc)) from exc

    async def probe() -> None:
        client = adapter.bare_client(state, url)
        try:
            await adapter.identity(client)
        except AuthenticationError:
            return  # the API, asking for credentials
        except APIConnectionError:
            raise  # no answer: said below
        except APIError as exc:
            raise CliError(
                f"{url} does not answer as a {adapter.api_name} server ({describe_error(exc, server=url)}): "
                "is the URL right?",
                EXIT_FAILED,
            ) from exc
        finally:
            await adapter.close(client)

    try:
        anyio.run(probe)
    except CliError:
        raise
    except Exception as exc:  # no answer: prepare runs before run_command reports errors
        raise CliError(describe_error(exc, server=url), exit_code_for_error(exc)) from exc


def prepare(
    state: State,
    adapter: ApiAdapter[Any],
    *,
    fresh: bool = False,
    needs: tuple[str, ...] = (),
    preflight: Callable[[State], None] | None = None,
) -> Prepared:
    """Before the event loop: the URL, the command's own local checks (``preflight``, with
    ``state.url`` set), then a saved session for that URL, else a check that the server
    answers and every setting a login needs (prompting for what is missing). ``fresh`` ignores
    saved sessions (``auth login``); ``needs`` are further settings the command itself uses (a
    new PIN)."""
    resolver = state.resolver()
    settings = resolver.resolve()
    store = state.store()
    url = _url_of(state, adapter, settings, store.urls())
    if url is None:
        resolver.require(settings, state.spec.url_setting)
        url = adapter.normalize_url(settings.get(state.spec.url_setting) or "")
    state.url = url
    if preflight is not None:
        preflight(state)
    if not fresh:
        saved = store.get(url, now=state.now())
        if saved is not None:
            for name in needs:
                resolver.require(settings, name)
            return Prepared(url=url, saved=saved, settings=settings)
    if adapter.logs_in(settings):
        # Local state first: nothing is sent when what the login records cannot be kept.
        check_login_record(state)
        if settings.secret("totp_secret") is not None:
            step_registry().check()
        check_server(state, adapter, url)
    for name in (*adapter.required(settings), *needs):
        resolver.require(settings, name)
    return Prepared(url=url, saved=None, settings=settings)


@contextlib.asynccontextmanager
async def open_session(
    state: State,
    adapter: ApiAdapter[ClientT],
    prepared: Prepared,
    *,
    keep: bool = False,
    finishes_pending: bool = False,
    solve_captcha: bool = False,
) -> AsyncIterator[Session[ClientT]]:
    """The client for ``prepared``. A saved credential is used as is (its expiry moves on when
    the command ends); one the server refuses is forgotten, with a message saying to log in
    again. Otherwise the password login runs now, step by step (:class:`.login.LoginSteps`), and
    its session is ended on the server when the command ends, unless ``keep``. A login that
    left a step to finish is refused unless the command ``finishes_pending``; ``solve_captcha``
    unblocks a login the server holds behind a CAPTCHA (``auth unblock-captcha``)."""
    provider: InteractiveCodeProvider | None = None
    login: Login | None = None
    credential = prepared.saved
    if credential is not None:
        client = adapter.saved_client(state, prepared.url, credential)
    else:
        settings = prepared.settings
        assert settings is not None
        provider = state.code_provider(settings)
        if not adapter.logs_in(settings):
            client = adapter.key_client(state, prepared.url, settings)
        else:
            login = await _sign_in(state, adapter, prepared, settings, provider, solve_captcha)
            credential = SavedCredential(
                url=prepared.url,
                kind=login.kind,
                user=settings.get("email") or "",
                secret=login.secret,
                created_at=state.now(),
                expires_at=login.expires_at,
                idle_timeout=login.idle_timeout,
            )
            client = adapter.saved_client(state, prepared.url, credential)
    session = Session(client, prepared.url, prepared.saved, prepared.settings, provider, state, login)
    store = state.store()
    try:
        if login is not None and login.pending is not None and not finishes_pending:
            raise CliError(adapter.pending_message(state))
        yield session
    except AuthenticationError as exc:
        if credential is not None and not isinstance(exc, MfaError):
            raise session_refused(state, prepared) from exc
        raise
    finally:
        if login is not None and credential is not None and not keep:
            await _end_session(adapter, client, credential)
        await adapter.close(client)
    if prepared.saved is not None:
        store.put(prepared.saved.used_at(state.now()))


def session_refused(state: State, prepared: Prepared) -> CliError:
    """What to say when the server stops accepting the session a command runs on: a saved one
    has expired or was revoked (and is forgotten now); one this command's login made ended
    (unused for too long, or ended elsewhere)."""
    if prepared.saved is not None:
        state.store().remove(prepared.url)
        return CliError(
            f"the saved session for {prepared.url} has expired or was revoked (forgotten now): "
            f"run  {state.spec.name} auth login"
        )
    return CliError(
        f"{prepared.url} no longer accepts this command's session (unused for too long, or ended "
        "elsewhere): run the command again"
    )


async def _sign_in(
    state: State,
    adapter: ApiAdapter[ClientT],
    prepared: Prepared,
    settings: Settings,
    provider: InteractiveCodeProvider,
    solve_captcha: bool,
) -> Login:
    user = settings.get("email") or ""
    steps = LoginSteps(
        state=state,
        url=prepared.url,
        user=user,
        provider=provider,
        count=lambda: _count_login(state, prepared.url, user),
        captcha_token=settings.secret("captcha_token") if solve_captcha else None,
    )
    bare = adapter.bare_client(state, prepared.url)
    try:
        return await adapter.sign_in(bare, settings, steps)
    finally:
        await adapter.close(bare)


async def _end_session(adapter: ApiAdapter[ClientT], client: ClientT, credential: SavedCredential) -> None:
    """Log this command's session out: shielded from cancellation, bounded, best effort (the
    server ends an unused session by itself anyway)."""
    import anyio

    with anyio.move_on_after(_LOGOUT_TIMEOUT, shield=True), contextlib.suppress(APIError):
        await adapter.logout(client, credential)


def run_session(
    ctx: typer.Context,
    adapter: ApiAdapter[ClientT],
    body: Callable[[Session[ClientT]], Awaitable[int | None]],
    *,
    preflight: Callable[[State], None] | None = None,
    finishes_pending: bool = False,
) -> NoReturn:
    """The common shape of a command: local checks and settings before the loop, then
    ``body(session)`` with the client (a saved session or a login), one-line errors and the
    documented exit codes."""
    state = state_of(ctx)
    prepared = prepare(state, adapter, preflight=preflight)

    async def main() -> int | None:
        async with open_session(state, adapter, prepared, finishes_pending=finishes_pending) as session:
            return await body(session)

    run_command(main, state)


# --------------------------------------------------------------------------- the login budget


def _count_login(state: State, url: str, user: str) -> None:
    """Record a login of ``user`` at ``url`` (a password step the server may have seen) and
    warn when that user's logins there within the API's window near its budget (Quatrix:
    about 15 per 15 minutes); ``auth login`` once avoids them. Other servers and users, and
    attempts that never reached the server, do not count."""
    budget = state.spec.login_budget
    if budget is None:
        return
    allowed, window = budget
    now = state.now()
    key = f"{url} {user.lower()}"
    recent: list[float] = []

    def record(logins: dict[str, list[Any]]) -> dict[str, list[Any]]:
        # One list of times per server and user; a damaged entry does not count.
        for name in list(logins):
            times = [
                t
                for t in logins[name]
                if isinstance(t, (int, float)) and not isinstance(t, bool) and now - t < window
            ]
            if times:
                logins[name] = times
            else:
                del logins[name]
        recent.extend([*logins.get(key, []), now])
        logins[key] = recent
        return logins

    _update_login_record(state, record)
    if len(recent) >= allowed - 2:
        stderr_console().print(
            f"warning: this is login {len(recent)} of about {allowed} that {url} allows {user} per "
            f"{window / 60:.0f} minutes; run  {state.spec.name} auth login  once and later commands "
            "reuse its session",
            markup=False,
        )


def _login_record(state: State) -> StateFile:
    return StateFile(
        ensure_state_dir(state.state_dir()) / _LOGINS_FILE,
        what="the login record",
        damaged="it only counts recent logins for a warning",
    )


def _read_logins(record: StateFile) -> dict[str, list[Any]]:
    """The recorded logins by ``"<url> <user>"``. The record is a state file like the saved
    sessions (owner-only, never through a link, refused when this version cannot read it);
    nothing secret is in it, and earlier versions wrote it 0644: ours is made 0600."""
    found = record.read_json(max_bytes=_MAX_LOGINS_BYTES, tighten=True)
    if found is None or isinstance(found, list):  # none yet, or format 1: it names no server
        return {}
    logins = found.get("logins") if isinstance(found, dict) else None
    if not isinstance(found, dict) or found.get("format") != _LOGINS_FORMAT or not isinstance(logins, dict):
        raise record.unknown_format(found.get("format") if isinstance(found, dict) else None, _LOGINS_FORMAT)
    return {str(k): v for k, v in logins.items() if isinstance(v, list)}


def check_login_record(state: State) -> None:
    """Refuse, before any login is spent, a login record this version cannot use."""
    if state.spec.login_budget is not None:
        _read_logins(_login_record(state))


def _update_login_record(
    state: State, update: Callable[[dict[str, list[Any]]], dict[str, list[Any]]]
) -> None:
    """Apply ``update`` to the recorded logins under the record's lock, and write the result."""
    record = _login_record(state)
    with locked_beside(record.path, what="the login record", wait=LOCK_WAIT_SECONDS):
        logins = update(_read_logins(record))
        record.replace_json({"format": _LOGINS_FORMAT, "logins": logins})


# --------------------------------------------------------------------------- auth commands


def add_auth_commands(app: typer.Typer, adapter: ApiAdapter[Any]) -> None:
    """``auth login`` / ``auth status`` / ``auth logout``, ``login`` as an alias, and ``auth
    unblock-captcha`` when the API blocks logins behind a CAPTCHA."""
    from .app import flag

    json_option = flag("Print JSON on stdout.", "--json")

    def sign_in(ctx: typer.Context, json_out: bool, *, solve_captcha: bool) -> None:
        state = state_of(ctx)
        prepared = prepare(state, adapter, fresh=True, needs=("captcha_token",) if solve_captcha else ())
        state.store().check()  # a session that could not be saved is not worth a login

        async def run() -> int:
            settings = prepared.settings
            assert settings is not None
            async with open_session(
                state, adapter, prepared, keep=True, solve_captcha=solve_captcha
            ) as session:
                who = await adapter.identity(session.client)  # an API key is checked here
            api_key = settings.secret("api_key")
            credential = session.login
            if credential is None:
                assert api_key is not None
                credential = Login(kind="api_key", secret=api_key)
            store = state.store()
            store.put(
                SavedCredential(
                    url=prepared.url,
                    kind=credential.kind,
                    user=who.email,
                    secret=credential.secret,
                    created_at=state.now(),
                    expires_at=credential.expires_at,
                    idle_timeout=credential.idle_timeout,
                ).used_at(state.now())
            )
            _warn(who)
            second = session.provider.describe() if session.provider is not None else "none"
            if credential.kind == "api_key":
                second = "n/a (API key)"
            info = {
                "url": prepared.url,
                "user": who.data,
                "method": "api key" if credential.kind == "api_key" else "password",
                "second_factor": second,
                "saved_in": store.location,
                "kind": credential.kind,
                "expires_at": credential.expires_at,
            }
            if json_out:
                emit_json(info)
            else:
                out = stdout_console()
                out.print(f"Logged in to {prepared.url} as {who.name or '-'} <{who.email}> ({who.role})")
                method = "API key" if credential.kind == "api_key" else "password"
                out.print(f"Method: {method}; second factor: {second}")
                out.print(
                    f"{_sentence(_kind_text(credential.kind))} saved to "
                    f"{store.location}{_expiry(credential)}."
                )
            return EXIT_OK

        run_command(run, state)

    def login(ctx: typer.Context, json_out: bool = json_option) -> None:
        """Log in (password, then the second factor; or check the API key) and save the session
        for later commands, owner-only (or in the OS keyring)."""
        sign_in(ctx, json_out, solve_captcha=False)

    def unblock_captcha(ctx: typer.Context, json_out: bool = json_option) -> None:
        """After failed logins the server asks for a CAPTCHA: solve it (in a web browser), give
        its token when asked (or in the environment), and log in as  auth login  does."""
        sign_in(ctx, json_out, solve_captcha=True)

    def status(ctx: typer.Context, json_out: bool = json_option) -> None:
        """Show the saved session and whether the server still accepts it."""
        state = state_of(ctx)
        store = state.store()
        url, saved = _saved(state, adapter, store)
        if url is None or saved is None:
            where = url or "any server"
            if json_out:
                emit_json({"url": url, "logged_in": False})
            else:
                stderr_console().print(
                    f"Not logged in to {where}: run  {state.spec.name} auth login", markup=False
                )
            raise SystemExit(EXIT_FAILED)
        prepared = Prepared(url=url, saved=saved, settings=None)

        async def run() -> int:
            async with open_session(state, adapter, prepared) as session:
                who = await adapter.identity(session.client)
            _warn(who)
            info = {
                "url": url,
                "logged_in": True,
                "user": who.data,
                "kind": saved.kind,
                "saved_in": store.location,
                "expires_at": saved.used_at(state.now()).expires_at,
            }
            if json_out:
                emit_json(info)
            else:
                out = stdout_console()
                out.print(f"Logged in to {url} as {who.name or '-'} <{who.email}> ({who.role})")
                out.print(
                    f"{_sentence(_kind_text(saved.kind))} kept in {store.location}; the server accepts it."
                )
            return EXIT_OK

        run_command(run, state)

    def logout(ctx: typer.Context) -> None:
        """End the saved session on the server and forget it here."""
        state = state_of(ctx)
        store = state.store()
        url, saved = _saved(state, adapter, store)
        if url is None or saved is None:
            stderr_console().print(f"Not logged in to {url or 'any server'}.", markup=False)
            raise SystemExit(EXIT_FAILED)

        async def run() -> int:
            client = adapter.saved_client(state, url, saved)
            try:
                done = await adapter.logout(client, saved)
            finally:
                await adapter.close(client)
                store.remove(url)
            stdout_console().print(f"Logged out of {url}: {done}; forgotten here.", markup=False)
            return EXIT_OK

        run_command(run, state)

    auth = new_group("Log in once and reuse the session; show it; log out.")
    add_command(auth, "login", login)
    add_command(auth, "status", status)
    add_command(auth, "logout", logout)
    if adapter.captcha:
        add_command(auth, "unblock-captcha", unblock_captcha)
    app.add_typer(auth, name="auth")
    add_command(app, "login", login, help="Same as  auth login.")


def _warn(who: Identity) -> None:
    for warning in who.warnings:
        stderr_console().print(f"warning: {warning}", markup=False)


def _kind_text(kind: CredentialKind) -> str:
    return {"session": "session", "jwt": "JWT session", "api_key": "API key"}[kind]


def _sentence(text: str) -> str:
    """``text`` starting a sentence: its first letter upper-case, the rest as written (API)."""
    return text[:1].upper() + text[1:]


def _expiry(credential: Login) -> str:
    if credential.idle_timeout is not None:
        return f" (it ends after {credential.idle_timeout / 60:.0f} minutes unused)"
    if credential.expires_at is not None:
        return " (until it expires)"
    return ""
