"""Settings of a tool: each value from an option, the environment, an owner-only config file,
or a prompt with hidden input. Never from the command line's arguments for a secret: argv is
visible to every user of the machine (``ps``) and lands in shell history."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._files import ensure_private_directory
from ..secret import Secret, reveal
from .errors import ConfigFileError

if TYPE_CHECKING:
    from .prompts import Prompter

__all__ = [
    "Setting",
    "Settings",
    "SettingsResolver",
    "default_config_path",
    "default_state_dir",
    "ensure_state_dir",
    "load_config_file",
]


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


def default_state_dir(tool: str) -> Path:
    """``$XDG_STATE_HOME/<tool>`` (``~/.local/state/<tool>``): saved sessions, automatic journals."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / tool


def ensure_state_dir(directory: Path) -> Path:
    """``directory`` (a tool's state directory, or one inside it) made owner-only (0700), or a
    :class:`~mfa_common.errors.StateFileError` naming it and the setting that moves it."""
    ensure_private_directory(
        directory, what="the tool's state", fix="set XDG_STATE_HOME to a directory you own"
    )
    return directory


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
        prompter: Prompter,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.specs = {s.name: s for s in settings}
        self.config_path = config_path
        self.default_path = default_path
        self.section = section
        self.overrides = {k: v for k, v in (overrides or {}).items() if v}
        self.prompter = prompter
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
