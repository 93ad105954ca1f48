"""The frame every tool shares: global options, ``--version``, ``--debug``, completion, and
running a command's coroutine with one-line errors and documented exit codes.

A tool is a :class:`ToolSpec` (its name, settings and help) plus its commands; :func:`build_app`
makes the typer application. Global options are accepted anywhere on the line (``tool mfa reset
--config c.toml`` as well as ``tool --config c.toml mfa reset``), choices ignore case, flags show
no type in the help, and Ctrl-C exits 130 after the command printed what it had done.
"""

from __future__ import annotations

import functools
import logging
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import StateFileError
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    describe_error,
    error_details,
    exit_code_for_error,
    first_leaf,
)
from .output import stderr_console
from .prompts import Prompter
from .settings import Setting, SettingsResolver, default_config_path, default_state_dir

if TYPE_CHECKING:
    # What runs a command loads when one runs: --help, --version and completion never need it.
    from ..clock import Clock
    from ..replay_state import FileStepRegistry
    from .credentials import CredentialStore
    from .prompts import InteractiveCodeProvider
    from .settings import Settings

__all__ = [
    "DEBUG_ENV",
    "QuietCommand",
    "QuietGroup",
    "State",
    "ToolSpec",
    "add_command",
    "build_app",
    "cli_command",
    "flag",
    "new_group",
    "run_command",
    "state_of",
    "step_registry",
]

#: ``MFA_SDKS_DEBUG=1`` turns on the SDK's (redacted) DEBUG log, like ``--debug``.
DEBUG_ENV = "MFA_SDKS_DEBUG"
_SDK_LOGGERS = ("mfa_common", "quatrix_async", "metalcloud_async")


@attrs.frozen(kw_only=True)
class ToolSpec:
    """What makes one tool: its name (``quatrix-async``), the config-file section, its settings,
    the setting holding the server URL and the extra option names for it (default: the
    setting's name, ``--host``), the environment variable naming a config file (default:
    ``<SECTION>_CONFIG``), its help, and the API's login budget (logins allowed per window of
    seconds) when the server has one."""

    name: str
    section: str
    settings: tuple[Setting, ...]
    url_setting: str
    url_help: str
    config_help: str
    help: str
    url_options: tuple[str, ...] = attrs.field(
        default=attrs.Factory(lambda spec: (f"--{spec.url_setting}",), takes_self=True)
    )
    config_env: str = attrs.field(
        default=attrs.Factory(lambda spec: f"{spec.section.upper()}_CONFIG", takes_self=True)
    )
    login_budget: tuple[int, float] | None = None


def step_registry() -> FileStepRegistry:
    """The TOTP step registry the tools' codes are recorded in: the one place to choose it.

    The cross-process one (:func:`mfa_common.replay_state.shared_step_registry`, a file in the
    user's state directory): a second command run within the same 30-second step waits for the
    next step instead of sending a code the server has just accepted (and would now refuse).
    """
    from ..replay_state import shared_step_registry

    return shared_step_registry()


@attrs.define
class State:
    """What one invocation decided: the global options, the clock, the prompter, the raw
    arguments (for the resume command) and the command running (for Ctrl-C's report)."""

    spec: ToolSpec
    base_url: str | None = None
    #: The server the command talks to, once known (error messages name it).
    url: str | None = None
    config: Path | None = None
    allow_insecure_http: bool = False
    debug: bool = False
    clock: Clock | None = None
    prompter: Prompter = attrs.field(factory=Prompter)
    argv: list[str] = attrs.field(factory=list)
    on_interrupt: list[Callable[[], None]] = attrs.field(factory=list)

    def now(self) -> float:
        """The time by this invocation's clock (a FakeClock in tests)."""
        if self.clock is not None:
            return self.clock.now()
        from ..clock import SystemClock

        return SystemClock().now()

    def resolver(self) -> SettingsResolver:
        """Settings from the options, the environment and the config file."""
        return SettingsResolver(
            self.spec.settings,
            config_path=self.config,
            default_path=default_config_path(self.spec.name),
            section=self.spec.section,
            overrides={self.spec.url_setting: self.base_url},
            prompter=self.prompter,
        )

    def code_provider(self, settings: Settings, *, pin: bool = True) -> InteractiveCodeProvider:
        """The second-factor answerer for a login with ``settings``."""
        from .prompts import InteractiveCodeProvider

        return InteractiveCodeProvider(
            totp_secret=settings.secret("totp_secret"),
            pin=settings.secret("pin") if pin else None,
            prompter=self.prompter,
            clock=self.clock,
            registry=step_registry(),
        )

    def store(self) -> CredentialStore:
        """The saved sessions of this tool."""
        from .credentials import CredentialStore, keyring_backend

        return CredentialStore(self.spec.name, default_state_dir(self.spec.name), keyring=keyring_backend())

    def state_dir(self) -> Path:
        """Where this tool keeps its state (saved sessions, automatic journals)."""
        return default_state_dir(self.spec.name)

    def command_line(self, *, drop: Sequence[str] = (), add: Sequence[str] = ()) -> str:
        """This invocation's command line (no secret is ever in it), without the options in
        ``drop`` (and their values), plus ``add``: the exact command that resumes a batch."""
        words: list[str] = []
        skip = False
        for word in self.argv:
            if skip:
                skip = False
                continue
            name = word.split("=", 1)[0]
            if name in drop:
                skip = "=" not in word
                continue
            words.append(word)
        return shlex.join([self.spec.name, *words, *add])


def state_of(ctx: typer.Context) -> State:
    """The :class:`State` of the running invocation."""
    obj = ctx.find_object(State)
    if obj is None:  # pragma: no cover - the callback always sets it
        raise CliError("internal: no state")
    return obj


def flag(help: str, *names: str) -> Any:
    """A boolean option shown without a type in the help."""
    return typer.Option(False, *names, help=help, metavar="", show_default=False)


# --------------------------------------------------------------------------- global options


def _hoist(args: list[str], values: set[str], flags: set[str]) -> list[str]:
    """Move the global options (and their values) to the front, wherever they were given."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            rest.extend(args[index:])
            break
        name = word.split("=", 1)[0]
        if name in flags:
            front.append(word)
        elif name in values:
            front.append(word)
            if "=" not in word and index + 1 < len(args):
                index += 1
                front.append(args[index])
        else:
            rest.append(word)
        index += 1
    return front + rest


def _quiet(params: list[Any]) -> list[Any]:
    # A flag takes no value, so the help shows no type after it (typer would print <bool>).
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _QuietFlags:
    """Help that shows no type after flags (mixed into typer's command and group classes)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _quiet(super().get_params(ctx))  # type: ignore[misc]

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            _quiet([option])
        return option


class QuietCommand(_QuietFlags, TyperCommand):
    """A command whose help shows no type after its flags."""


class QuietGroup(_QuietFlags, TyperGroup):
    """A group whose help shows no type after its flags."""


def new_group(help: str) -> typer.Typer:
    """A command group (``mfa``, ``users``) in the tools' style."""
    return typer.Typer(help=help, cls=QuietGroup, no_args_is_help=True)


def add_command(
    group: typer.Typer,
    name: str,
    func: Callable[..., None],
    *,
    help: str | None = None,
    cls: type[QuietCommand] = QuietCommand,
) -> None:
    """Add ``func`` as the command ``name`` of ``group`` (errors reported as one line)."""
    group.command(name, cls=cls, help=help)(cli_command(func))


_NOT_GLOBAL = ("help", "install_completion", "show_completion")
#: ``-h`` is ``--help``, as in gh and aws.
HELP_OPTIONS = ("-h", "--help")


class _ToolGroup(QuietGroup):
    """The root command: takes its global options from anywhere on the line."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        values: set[str] = set()
        flags: set[str] = set()
        for param in self.params:
            # typer builds on its own copy of click: tell options by duck typing.
            if param.param_type_name != "option" or param.name in _NOT_GLOBAL:
                continue
            names = [*param.opts, *param.secondary_opts]
            (flags if getattr(param, "is_flag", False) else values).update(names)
        ctx.meta["mfa_cli.argv"] = list(args)
        return super().parse_args(ctx, _hoist(list(args), values, flags))

    def _path_of(self, args: Sequence[str] | None, prog_name: str | None) -> str:
        """The command a usage error is about, read from the words given (click's parser does
        not always attach its context to the error)."""
        words = list(sys.argv[1:] if args is None else args)
        path = [prog_name or self.name or ""]
        command: Any = self
        for word in words:
            sub = getattr(command, "commands", {}).get(word) if not word.startswith("-") else None
            if sub is not None:
                command = sub
                path.append(word)
        return " ".join(path)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Usage errors (an unknown command or option, a missing value) are reported in the tools'
        one style, ``error:`` and a sentence naming the help to read, not in a box."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except Exception as exc:
            # typer raises click's exceptions from its own copy of click in some versions:
            # they are told by their attributes.
            if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
                raise
            context = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
                typer.echo(context.get_help())
            else:
                path = context.command_path if context is not None else self._path_of(args, prog_name)
                message = str(exc.format_message()).rstrip(".")
                stderr_console().print(f"error: {message} (see  {path} --help)", markup=False)
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise SystemExit(EXIT_INTERRUPTED) from None
        if code is None:
            raise SystemExit(EXIT_OK)
        raise SystemExit(code if isinstance(code, int) else EXIT_OK)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is logged (not when the handler was
    made), so a tool run in-process (tests, an embedding program) never logs to a stale stream."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _set_debug_log(enabled: bool) -> None:
    """The SDK's DEBUG log on stderr, through the redacting filter (never a secret), or (not
    ``enabled``) none of it: a tool run again in the same process starts from a quiet log."""
    for name in _SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        ours = [h for h in sdk_logger.handlers if isinstance(h, _StderrHandler)]
        for handler in ours:
            sdk_logger.removeHandler(handler)
        if ours or enabled:
            sdk_logger.setLevel(logging.DEBUG if enabled else logging.NOTSET)
    if not enabled:
        return
    from .._logging import RedactingFilter, protect_third_party_loggers

    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    for name in _SDK_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    protect_third_party_loggers()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mfa-sdks")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def entry_point(spec: ToolSpec, build: Callable[[], typer.Typer]) -> Callable[[], None]:
    """What a tool's console script and ``python -m`` run: the app ``build()`` makes, as
    ``spec.name``."""

    def main() -> None:
        build()(prog_name=spec.name)

    main.__doc__ = f"Entry point of the ``{spec.name}`` console script."
    return main


def build_app(
    spec: ToolSpec,
    register: Callable[[typer.Typer], None],
    *,
    clock: Clock | None = None,
    prompter: Prompter | None = None,
) -> typer.Typer:
    """The typer application of ``spec``; ``register(app)`` adds the tool's commands.

    ``clock`` drives TOTP codes and saved-session expiry (tests share a FakeClock with the fake
    server); ``prompter`` asks for missing values (default: the terminal).
    """
    base = State(spec=spec, clock=clock, prompter=prompter or Prompter())

    def show_version(value: bool) -> None:
        if value:
            typer.echo(f"{spec.name} {_version()}")
            raise typer.Exit(EXIT_OK)

    def main_options(
        ctx: typer.Context,
        base_url: str | None = typer.Option(None, "--base-url", *spec.url_options, help=spec.url_help),
        config: Path | None = typer.Option(None, "--config", envvar=spec.config_env, help=spec.config_help),
        allow_insecure_http: bool = flag(
            "Allow http:// to a remote host (loopback test servers are allowed anyway).",
            "--allow-insecure-http",
        ),
        debug: bool = typer.Option(
            False,
            "--debug",
            envvar=DEBUG_ENV,
            help=f"Log every request (redacted) to stderr; also {DEBUG_ENV}=1.",
            metavar="",
            show_default=False,
        ),
        version: bool = typer.Option(
            False,
            "--version",
            callback=show_version,
            is_eager=True,
            help="Print the version and exit.",
            metavar="",
            show_default=False,
        ),
    ) -> None:
        _set_debug_log(debug)
        ctx.obj = State(
            spec=spec,
            base_url=base_url,
            config=config,
            allow_insecure_http=allow_insecure_http,
            debug=debug,
            clock=base.clock,
            prompter=base.prompter,
            argv=list(ctx.meta.get("mfa_cli.argv", [])),
        )

    main_options.__doc__ = spec.help
    app = typer.Typer(
        name=spec.name,
        help=spec.help,
        cls=_ToolGroup,
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        # Sub-commands inherit the help option names from the root's context.
        context_settings={"obj": base, "help_option_names": list(HELP_OPTIONS)},
    )
    app.callback()(main_options)
    register(app)
    return app


# --------------------------------------------------------------------------- running a command


def cli_command(func: Callable[..., None]) -> Callable[..., None]:
    """Wrap a command so that a :class:`CliError` or a refused state file raised before
    :func:`run_command` (a bad option combination, an unreadable CSV, a saved-sessions file this
    version cannot read) is reported like any other: one line, its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except (CliError, StateFileError) as exc:  # a state file refused before the loop, too
            # The command's context (typer's own copy of click's class in some versions).
            contexts = [v for v in (*args, *kwargs.values()) if hasattr(v, "find_object")]
            report_error(exc, contexts[0].find_object(State) if contexts else None)
            raise SystemExit(exit_code_for_error(exc)) from None

    return wrapper


def report_error(exc: BaseException, state: State | None) -> None:
    """The one way the tools report an error: ``error:`` and a short sentence naming the server
    and the next step; with ``--debug`` the error's type and the SDK's details on a second line."""
    err = stderr_console()
    err.print(f"error: {describe_error(exc, server=state.url if state else None)}", markup=False)
    if state is not None and state.debug:
        err.print(f"debug: {error_details(exc)}", markup=False)


def run_command(func: Callable[[], Awaitable[int | None]], state: State | None = None) -> NoReturn:
    """Run ``func`` on an event loop and exit with its code (None means 0).

    Errors are printed to stderr as one secret-free line (:func:`describe_error`) and mapped to
    an exit code (:func:`exit_code_for_error`). Ctrl-C runs the ``state.on_interrupt`` reports
    (a batch prints its summary so far and the command that resumes it), then exits 130.
    Never prints a traceback.
    """
    import anyio

    from ..replay_guard import using_step_registry

    try:
        # Every code the command issues (a login, a re-enrolment) goes through the shared registry.
        with using_step_registry(step_registry()):
            code = anyio.run(func)
    except KeyboardInterrupt:
        reports = state.on_interrupt if state is not None else []
        for report in reports:
            report()
        if not reports:
            stderr_console().print("interrupted", markup=False)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        first = first_leaf(exc)
        report_error(first, state)
        raise SystemExit(exit_code_for_error(first)) from None
    raise SystemExit(EXIT_OK if code is None else code)
