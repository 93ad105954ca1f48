"""Shared pieces of the command-line tools (``quatrix-async``, ``metalcloud-async``).

Needs the ``cli`` extra (typer, rich, segno); nothing in the SDK imports this module,
so ``import quatrix_async`` stays free of those dependencies.

* Credentials: :class:`SettingsResolver` reads each value from the environment, then from a
  config file (TOML or JSON, refused unless only its owner can read it), then asks for it with
  hidden input. Never from the command line: argv is visible to every user of the machine
  (``ps``) and lands in shell history.
* Second factor: :class:`InteractiveCodeProvider` answers a login's MFA challenge from a
  configured TOTP secret or PIN, or asks the person at the terminal, and records which kind
  was used (for ``login``'s report).
* Output: :func:`render_qr` (a QR code drawn with text blocks), :class:`BatchProgressDisplay`
  (a rich progress bar fed by ``run_batch``'s ``on_progress``), :func:`print_summary` and
  :func:`emit_json`, and :func:`run_command`, which runs a coroutine and maps its outcome onto
  an exit code while printing only secret-free error messages.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import anyio
import attrs
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from .batch import BatchProgress, BatchSummary, JournalError
from .clock import Clock
from .code_providers import (
    CallbackCodeProvider,
    CodeProvider,
    IssuedCode,
    MfaChallenge,
    StaticCodeProvider,
    TotpCodeProvider,
)
from .errors import (
    AuthenticationError,
    CaptchaRequiredError,
    InvalidInputError,
    MfaError,
    MfaSdkError,
    PermissionDeniedError,
)
from .qr import render_qr
from .secret import Secret, reveal

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "BatchProgressDisplay",
    "CliError",
    "ConfigFileError",
    "InteractiveCodeProvider",
    "Prompter",
    "Setting",
    "Settings",
    "SettingsResolver",
    "cli_command",
    "default_config_path",
    "describe_error",
    "emit_json",
    "exit_code_for",
    "exit_code_for_error",
    "load_config_file",
    "print_summary",
    "render_qr",
    "run_command",
    "stderr_console",
    "stdout_console",
    "write_private_file",
]

T = TypeVar("T")

#: Every item done (or skipped), or the command succeeded.
EXIT_OK = 0
#: Some items failed (or their outcome is unknown), or the API call failed.
EXIT_FAILED = 1
#: Wrong usage, missing or refused credentials, a config file with loose permissions.
EXIT_USAGE = 2
#: Ctrl-C (the shell convention 128 + SIGINT).
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as one line (``message`` must be secret-free) with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ConfigFileError(CliError):
    """The config file cannot be used: missing, unreadable, malformed or not owner-only."""


# --------------------------------------------------------------------------- settings


@attrs.frozen
class Setting:
    """One value a tool needs: its config-file key, its environment variable, whether it is a
    secret (prompted with hidden input, kept in a :class:`~mfa_common.secret.Secret`) and the
    prompt text."""

    name: str
    env: str
    secret: bool = False
    prompt: str | None = None


def default_config_path(tool: str) -> Path:
    """``$XDG_CONFIG_HOME/<tool>/config.toml`` (``~/.config/<tool>/config.toml``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / tool / "config.toml"


def _check_private(path: Path, st: os.stat_result) -> None:
    if os.name != "posix":  # pragma: no cover - POSIX permission bits only
        return
    if not stat.S_ISREG(st.st_mode):
        raise ConfigFileError(f"config file {path} is not a regular file")
    if st.st_uid != os.geteuid():
        raise ConfigFileError(f"config file {path} belongs to another user; refusing to read credentials")
    loose = st.st_mode & 0o077
    if loose:
        raise ConfigFileError(
            f"config file {path} is readable or writable by other users "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); it holds credentials, so it must be owner-only: "
            f"run  chmod 600 {path}"
        )


def load_config_file(path: Path, *, section: str | None = None) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON file of settings, after checking it is owner-only.

    The file is refused (:class:`ConfigFileError`) when its group or other permission bits
    are set, or when another user owns it. Keys may sit at the top level or in a table named
    ``section`` (``[quatrix]``); the table wins. Parse errors are reported without the file's
    content (a TOML error message can quote a line, and a line may hold a password).
    """
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            _check_private(path, st)
            raw = handle.read()
    except FileNotFoundError:
        raise ConfigFileError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigFileError(f"config file {path} cannot be read ({type(exc).__name__})") from None
    data: Any
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except ValueError:
            raise ConfigFileError(f"config file {path} is not valid JSON") from None
    else:
        if sys.version_info >= (3, 11):
            import tomllib

            try:
                data = tomllib.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise ConfigFileError(f"config file {path} is not valid TOML") from None
        else:  # pragma: no cover - Python 3.10
            raise ConfigFileError(f"config file {path}: TOML needs Python 3.11+; use a .json file")
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {path} must hold a table/object of settings")
    merged = {k: v for k, v in data.items() if not isinstance(v, dict)}
    if section is not None and isinstance(data.get(section), dict):
        merged.update(data[section])
    return merged


class Settings:
    """Resolved values (see :class:`SettingsResolver`); secrets stay wrapped."""

    def __init__(self, values: Mapping[str, str | Secret[str]], sources: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._sources = dict(sources)

    def get(self, name: str) -> str | None:
        """A plain (non-secret) value, or None."""
        value = self._values.get(name)
        return reveal(value) if value is not None else None

    def secret(self, name: str) -> Secret[str] | None:
        """A secret value, wrapped, or None."""
        value = self._values.get(name)
        if value is None:
            return None
        return value if isinstance(value, Secret) else Secret(value)

    def has(self, name: str) -> bool:
        """Whether the value is known."""
        return self._values.get(name) is not None

    def source(self, name: str) -> str | None:
        """Where the value came from: ``"environment"``, ``"config file"``, ``"option"``, ``"prompt"``."""
        return self._sources.get(name)

    def set(self, name: str, value: str | Secret[str], source: str) -> None:
        """Record a value obtained later (a prompt)."""
        self._values[name] = value
        self._sources[name] = source

    def __repr__(self) -> str:
        return f"Settings(names={sorted(self._values)!r})"


class Prompter:
    """Asks the person at the terminal (prompts on stderr, so stdout stays machine-readable).

    End of input (a script with nothing on stdin) raises :class:`CliError` naming where the
    value could have come from, instead of hanging or printing a traceback.
    """

    def ask(self, text: str, *, hide: bool, hint: str = "") -> str:
        """One line of input; ``hide`` suppresses the echo (passwords, codes)."""
        try:
            value = typer.prompt(text, hide_input=hide, err=True, default=None, show_default=False)
        except (typer.Abort, EOFError):
            raise CliError(f"no value for {text.lower()}{hint}") from None
        result = str(value).strip() if not hide else str(value)
        if not result:
            raise CliError(f"an empty value was given for {text.lower()}")
        return result


class SettingsResolver:
    """Resolve :class:`Setting` values: environment → config file → prompt.

    ``config_path`` is an explicit file (``--config`` or the ``<TOOL>_CONFIG`` variable: it must
    exist); otherwise ``default_path`` is read when it exists. ``overrides`` are non-secret
    values given as options (``--base-url``).
    """

    def __init__(
        self,
        settings: Iterable[Setting],
        *,
        config_path: Path | None,
        default_path: Path | None,
        section: str | None,
        overrides: Mapping[str, str | None] | None = None,
        prompter: Prompter | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.specs = {s.name: s for s in settings}
        self.config_path = config_path
        self.default_path = default_path
        self.section = section
        self.overrides = {k: v for k, v in (overrides or {}).items() if v}
        self.prompter = prompter or Prompter()
        self.environ = os.environ if environ is None else environ

    def _config(self) -> tuple[dict[str, Any], Path | None]:
        if self.config_path is not None:
            return load_config_file(self.config_path, section=self.section), self.config_path
        if self.default_path is not None and self.default_path.exists():
            return load_config_file(self.default_path, section=self.section), self.default_path
        return {}, None

    def resolve(self) -> Settings:
        """Read every setting from the options, the environment and the config file (no prompt)."""
        config, _ = self._config()
        values: dict[str, str | Secret[str]] = {}
        sources: dict[str, str] = {}
        for name, spec in self.specs.items():
            raw: Any = None
            source = ""
            if name in self.overrides:
                raw, source = self.overrides[name], "option"
            elif self.environ.get(spec.env):
                raw, source = self.environ[spec.env], "environment"
            elif config.get(name) not in (None, ""):
                raw, source = config[name], "config file"
            if raw is None:
                continue
            if not isinstance(raw, (str, int)) or isinstance(raw, bool):
                raise ConfigFileError(f"config setting {name!r} must be a string")
            text = str(raw)
            values[name] = Secret(text) if spec.secret else text
            sources[name] = source
        return Settings(values, sources)

    def require(self, settings: Settings, name: str) -> None:
        """Make sure ``name`` is known, asking for it when it is not."""
        if settings.has(name):
            return
        spec = self.specs[name]
        hint = f": set {spec.env} or add {name!r} to the config file"
        value = self.prompter.ask(spec.prompt or name, hide=spec.secret, hint=hint)
        settings.set(name, Secret(value) if spec.secret else value, "prompt")


# --------------------------------------------------------------------------- second factor


class InteractiveCodeProvider:
    """Answers MFA challenges for a command-line login and remembers which kind it used.

    ``totp`` challenges use the configured TOTP secret (replay-safe codes) or, without one, ask
    for a code with hidden input (through :class:`~mfa_common.code_providers.CallbackCodeProvider`,
    which checks the 6-digit shape before anything is sent). ``pin`` challenges use the
    configured PIN or ask for it. :attr:`used` lists what answered, e.g. ``["totp (typed)"]``.
    """

    def __init__(
        self,
        *,
        totp_secret: Secret[str] | None = None,
        pin: Secret[str] | None = None,
        prompter: Prompter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.prompter = prompter or Prompter()
        self._totp = TotpCodeProvider(totp_secret, clock=clock) if totp_secret is not None else None
        self._pin = StaticCodeProvider(pin, kind="pin") if pin is not None else None
        self.used: list[str] = []

    def _ask(self, text: str, hint: str) -> Callable[[MfaChallenge], str]:
        def callback(challenge: MfaChallenge) -> str:
            return self.prompter.ask(text, hide=True, hint=hint)

        return callback

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        """A code for ``challenge`` (see the class docstring)."""
        provider: CodeProvider
        if challenge.kind == "pin":
            if self._pin is not None:
                provider, label = self._pin, "pin (configured)"
            else:
                provider = CallbackCodeProvider(
                    self._ask("PIN", ": set the PIN in the environment or config file"),
                    kind="pin",
                    digits=None,
                )
                label = "pin (typed)"
        elif self._totp is not None:
            provider, label = self._totp, "totp (from the configured secret)"
        else:
            provider = CallbackCodeProvider(
                self._ask(
                    "Authentication code",
                    ": set the TOTP secret in the environment or config file, or run interactively",
                ),
                kind="totp",
                digits=6,
            )
            label = "totp (typed)"
        issued = await provider.issue(challenge)
        self.used.append(label)
        return issued

    def describe(self) -> str:
        """What answered the second factor, or ``"none"``."""
        return ", ".join(dict.fromkeys(self.used)) if self.used else "none"

    def __repr__(self) -> str:
        return f"InteractiveCodeProvider(totp={self._totp is not None}, pin={self._pin is not None})"


# --------------------------------------------------------------------------- output


def stdout_console() -> Console:
    """Results (tables, the QR code): stdout, no syntax highlighting, wide enough for tables."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=_width())


def stderr_console() -> Console:
    """Messages and progress: stderr, so stdout stays clean for ``--json``."""
    return Console(file=sys.stderr, highlight=False, width=_width())


def _width() -> int | None:
    return None if sys.stdout.isatty() else 120


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file only its owner can read (0600); refuses to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class BatchProgressDisplay:
    """A live rich progress bar for :func:`mfa_common.batch.run_batch`; pass it as ``on_progress``.

    ``total`` (when known) gives a bar and an ETA; for a streamed source the bar shows counts.
    Use as a context manager around ``run_batch``. Disabled (``enabled=False``) it does nothing,
    which is what ``--json`` wants.
    """

    def __init__(
        self,
        description: str,
        *,
        total: int | None = None,
        enabled: bool = True,
        console: Console | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.enabled = enabled
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.last: BatchProgress | None = None

    def __enter__(self) -> BatchProgressDisplay:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.fields[of]}"),
                TextColumn(
                    "done {task.fields[done]}  failed {task.fields[failed]}  skipped {task.fields[skipped]}"
                ),
                TextColumn("{task.fields[rate]:.0f}/s"),
                TimeElapsedColumn(),
                console=self._console or stderr_console(),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.description,
                total=self.total,
                of=self.total if self.total is not None else "?",
                done=0,
                failed=0,
                skipped=0,
                rate=0.0,
            )
        return self

    def __call__(self, progress: BatchProgress) -> None:
        self.last = progress
        if self._progress is None or self._task is None:
            return
        self._progress.update(
            self._task,
            completed=progress.finished,
            done=progress.done,
            failed=progress.failed + progress.unknown,
            skipped=progress.skipped,
            rate=progress.rate,
            of=self.total if self.total is not None else (progress.seen if progress.final else "?"),
        )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()
            self._progress = None


def print_summary(console: Console, summary: BatchSummary, *, title: str) -> None:
    """The batch summary as a table, then failures by reason (secret-free by construction)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for name, value in (
        ("total", summary.total),
        ("done", summary.done),
        ("failed", summary.failed),
        ("skipped", summary.skipped),
        ("unknown", summary.unknown),
        ("elapsed", f"{summary.elapsed:.2f} s"),
        ("throughput", f"{summary.throughput:.1f}/s"),
    ):
        table.add_row(name, str(value))
    if summary.stopped:
        table.add_row("stopped", summary.stopped)
    console.print(table)
    if summary.failures_by_reason:
        failures = Table(title="Failures by reason", title_justify="left")
        failures.add_column("reason")
        failures.add_column("count", justify="right")
        failures.add_column("examples")
        failures.add_column("message")
        for reason, group in sorted(summary.failures_by_reason.items(), key=lambda kv: -kv[1].count):
            failures.add_row(reason, str(group.count), ", ".join(group.example_keys), group.example_message)
        console.print(failures)
    if summary.skipped_by_reason:
        skipped = Table(title="Skipped by reason", title_justify="left")
        skipped.add_column("reason")
        skipped.add_column("count", justify="right")
        for reason, count in sorted(summary.skipped_by_reason.items(), key=lambda kv: -kv[1]):
            skipped.add_row(reason, str(count))
        console.print(skipped)


def emit_json(data: Any, out: IO[str] | None = None) -> None:
    """One JSON document on stdout (the only thing a ``--json`` command writes there)."""
    stream = out or sys.stdout
    stream.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    stream.flush()


def exit_code_for(summary: BatchSummary) -> int:
    """0 when every item ended done or skipped, else 1 (failed, unknown or stopped early)."""
    return EXIT_OK if summary.ok else EXIT_FAILED


def exit_code_for_error(exc: BaseException) -> int:
    """2 for usage, credential and MFA problems (the command cannot work as invoked), else 1."""
    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(
        exc,
        (AuthenticationError, PermissionDeniedError, MfaError, CaptchaRequiredError, InvalidInputError),
    ):
        return EXIT_USAGE
    return EXIT_FAILED


def describe_error(exc: BaseException) -> str:
    """A one-line, secret-free description of ``exc``.

    The SDK's own errors have secret-free messages (URLs redacted, bodies reduced to the
    server's code and message), so their text is shown; any other exception is named by its
    class only, because its text (or a repr of a request) may hold anything.
    """
    if isinstance(exc, CliError):
        return exc.message
    if isinstance(exc, JournalError):
        return f"journal: {exc}"
    if isinstance(exc, MfaSdkError):
        text = " ".join(str(exc).split())
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"unexpected {type(exc).__name__} (no details are printed, they could contain credentials)"


def cli_command(func: Callable[..., None]) -> Callable[..., None]:
    """Wrap a command so that a :class:`CliError` raised before :func:`run_command` (a bad
    option combination, an unreadable CSV) is reported like any other: one line, its exit code."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except CliError as exc:
            stderr_console().print(f"error: {exc.message}", markup=False)
            raise SystemExit(exc.exit_code) from None

    return wrapper


def run_command(func: Callable[[], Awaitable[int | None]]) -> NoReturn:
    """Run ``func`` on an event loop and exit with its code (None means 0).

    Errors are printed to stderr as one secret-free line (:func:`describe_error`) and mapped to
    an exit code (:func:`exit_code_for_error`); Ctrl-C exits with 130. Never prints a traceback.
    """
    try:
        code = anyio.run(func)
    except KeyboardInterrupt:
        stderr_console().print("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        first = _first_leaf(exc)
        stderr_console().print(f"error: {describe_error(first)}", markup=False)
        raise SystemExit(exit_code_for_error(first)) from None
    raise SystemExit(EXIT_OK if code is None else code)


def _first_leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: several tasks failed at once."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or not inner or not isinstance(inner[0], BaseException):
            return exc
        exc = inner[0]
