"""How a tool gets a logged-in client: a saved session when there is one, else a login.

An API plugs in with an :class:`ApiAdapter` (how to build its client from settings or from a
saved credential, how to log in and out, who the caller is). :func:`prepare` runs before the
event loop starts, so that the settings' prompts (host, e-mail, password) never block it; the
second factor is asked for during the login, off the loop (see :mod:`.prompts`).

:func:`add_auth_commands` gives every tool ``auth login``, ``auth status``, ``auth logout``
(and ``login`` as a short alias of ``auth login``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

import attrs
import typer

from ..errors import AuthenticationError, MfaError
from .app import State, add_command, new_group, run_command, state_of
from .credentials import CredentialKind, CredentialStore, SavedCredential
from .errors import EXIT_FAILED, EXIT_OK, CliError
from .output import emit_json, stderr_console, stdout_console
from .prompts import InteractiveCodeProvider
from .settings import Settings

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
    """A credential a login produced (or an API key given), to save for later commands."""

    kind: CredentialKind
    secret: Secret[str] = attrs.field(repr=False)
    expires_at: float | None = None
    idle_timeout: float | None = None


class ApiAdapter(Generic[ClientT]):
    """What the frame needs to know about one API; subclass it once per tool."""

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
        return {"clock": state.clock, "allow_insecure_http": state.allow_insecure_http}

    def new_client(
        self, state: State, url: str, settings: Settings, provider: InteractiveCodeProvider
    ) -> ClientT:
        """A client that logs in with ``settings`` (or uses their API key)."""
        raise NotImplementedError

    def saved_client(self, state: State, url: str, saved: SavedCredential) -> ClientT:
        """A client that sends the saved credential and never logs in."""
        raise NotImplementedError

    async def login(self, client: ClientT, settings: Settings) -> Login:
        """Log in now (or check the API key) and return the credential to keep."""
        api_key = settings.secret("api_key")
        if api_key is not None:
            await self.identity(client)  # the key works
            return Login(kind="api_key", secret=api_key)
        return await self.password_login(client)

    async def password_login(self, client: ClientT) -> Login:
        """Log in with the password (and the second factor) and return the session."""
        raise NotImplementedError

    def keep(self, client: ClientT) -> None:
        """Make closing ``client`` leave its session open on the server (it is being saved)."""
        raise NotImplementedError

    async def logout(self, client: ClientT, saved: SavedCredential) -> str:
        """End the saved credential's session on the server; say what was done."""
        raise NotImplementedError

    async def identity(self, client: ClientT) -> Identity:
        """Who the client acts as (one API call)."""
        raise NotImplementedError

    async def close(self, client: ClientT) -> None:
        """Close the client (a password login is logged out unless :meth:`keep` was called)."""
        await client.aclose()  # type: ignore[attr-defined]


@attrs.frozen
class Prepared:
    """The outcome of :func:`prepare`: the URL and either a saved credential or the settings."""

    url: str
    saved: SavedCredential | None
    settings: Settings | None


@attrs.define
class Session(Generic[ClientT]):
    """An open client, how it is authenticated, and (for a login) what answered the second factor."""

    client: ClientT
    url: str
    saved: SavedCredential | None
    settings: Settings | None
    provider: InteractiveCodeProvider | None
    state: State


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


def prepare(
    state: State,
    adapter: ApiAdapter[Any],
    *,
    fresh: bool = False,
    needs: tuple[str, ...] = (),
) -> Prepared:
    """Before the event loop: find the URL, then a saved session for it, else every setting a
    login needs (prompting for what is missing). ``fresh`` ignores saved sessions (``auth
    login``); ``needs`` are further settings the command itself uses (a new PIN)."""
    resolver = state.resolver()
    settings = resolver.resolve()
    store = state.store()
    url = _url_of(state, adapter, settings, store.urls())
    state.url = url
    if url is not None and not fresh:
        saved = store.get(url, now=state.now())
        if saved is not None:
            for name in needs:
                resolver.require(settings, name)
            return Prepared(url=url, saved=saved, settings=settings)
    if url is None:
        resolver.require(settings, state.spec.url_setting)
        url = state.url = adapter.normalize_url(settings.get(state.spec.url_setting) or "")
    for name in (*adapter.required(settings), *needs):
        resolver.require(settings, name)
    return Prepared(url=url, saved=None, settings=settings)


@contextlib.asynccontextmanager
async def open_session(
    state: State, adapter: ApiAdapter[ClientT], prepared: Prepared, *, keep: bool = False
) -> AsyncIterator[Session[ClientT]]:
    """The client for ``prepared``. A saved credential is used as is (its expiry moves on when
    the command ends); one the server refuses is forgotten, with a message saying to log in
    again. A login's session is logged out at the end, unless ``keep``."""
    provider: InteractiveCodeProvider | None = None
    if prepared.saved is not None:
        client = adapter.saved_client(state, prepared.url, prepared.saved)
    else:
        assert prepared.settings is not None
        provider = state.code_provider(prepared.settings)
        if adapter.logs_in(prepared.settings):
            _count_login(state)
        client = adapter.new_client(state, prepared.url, prepared.settings, provider)
    session = Session(client, prepared.url, prepared.saved, prepared.settings, provider, state)
    store = state.store()
    try:
        yield session
    except AuthenticationError as exc:
        if prepared.saved is not None and not isinstance(exc, MfaError):
            store.remove(prepared.url)
            raise CliError(
                f"the saved session for {prepared.url} has expired or was revoked (forgotten now): "
                f"run  {state.spec.name} auth login"
            ) from None
        raise
    finally:
        if keep:
            adapter.keep(client)
        await adapter.close(client)
    if prepared.saved is not None:
        store.put(prepared.saved.used_at(state.now()))


def run_session(
    ctx: typer.Context,
    adapter: ApiAdapter[ClientT],
    body: Callable[[Session[ClientT]], Awaitable[int | None]],
) -> NoReturn:
    """The common shape of a command: settings before the loop, then ``body(session)`` with the
    client (a saved session or a login), one-line errors and the documented exit codes."""
    state = state_of(ctx)
    prepared = prepare(state, adapter)

    async def main() -> int | None:
        async with open_session(state, adapter, prepared) as session:
            return await body(session)

    run_command(main, state)


# --------------------------------------------------------------------------- the login budget


def _count_login(state: State) -> None:
    """Record a login and warn when this tool's logins within the API's window reach its budget
    (Quatrix: about 15 per 15 minutes); ``auth login`` once avoids them."""
    budget = state.spec.login_budget
    if budget is None:
        return
    allowed, window = budget
    now = state.now()
    path = state.state_dir() / _LOGINS_FILE
    try:
        times = [t for t in json.loads(path.read_text()) if isinstance(t, (int, float)) and now - t < window]
    except (OSError, ValueError, TypeError):
        times = []
    times.append(now)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(json.dumps(times))
    if len(times) >= allowed - 2:
        stderr_console().print(
            f"warning: this is login {len(times)} of about {allowed} the server allows per "
            f"{window / 60:.0f} minutes; run  {state.spec.name} auth login  once and later commands "
            "reuse its session",
            markup=False,
        )


# --------------------------------------------------------------------------- auth commands


def add_auth_commands(app: typer.Typer, adapter: ApiAdapter[Any]) -> None:
    """``auth login`` / ``auth status`` / ``auth logout``, and ``login`` as an alias."""
    from .app import flag

    json_option = flag("Print JSON on stdout.", "--json")

    def login(ctx: typer.Context, json_out: bool = json_option) -> None:
        """Log in (password, then the second factor; or check the API key) and save the session
        for later commands, owner-only (or in the OS keyring)."""
        state = state_of(ctx)
        prepared = prepare(state, adapter, fresh=True)

        async def run() -> int:
            assert prepared.settings is not None
            async with open_session(state, adapter, prepared, keep=True) as session:
                credential = await adapter.login(session.client, prepared.settings)
                who = await adapter.identity(session.client)
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
