"""The frame of the command-line tools (``quatrix-async``, ``metalcloud-async``).

Needs the ``cli`` extra (typer, rich, segno); nothing in the SDK imports this package, so
``import quatrix_async`` stays free of those dependencies. Each tool is a small adapter:

* :mod:`.app`: :class:`ToolSpec`, global options (anywhere on the line), ``--version``,
  ``--debug`` / ``MFA_SDKS_DEBUG=1``, shell completion, :func:`run_command` (exit codes);
* :mod:`.settings`: values from the environment, an owner-only config file, or a prompt;
* :mod:`.prompts`: prompts and confirmations, always off the event loop;
* :mod:`.session`: :class:`ApiAdapter`, saved sessions, the server check before a login,
  ``auth login|status|logout|unblock-captcha``;
* :mod:`.login`: a password login step by step (codes asked again, logins counted);
* :mod:`.listing`: records as a table or JSON with picked fields (``users list|get``);
* :mod:`.credentials`: the owner-only credentials file or the OS keyring;
* :mod:`.jobs`: batch changes: plan, dry run, ``--plan FILE``, ``apply FILE``, journal, Ctrl-C;
  :class:`BatchJobAdapter` runs an API's library job (its ``jobs`` module) as such a command;
* :mod:`.enrol`: showing a new 2FA secret and confirming it with a typed code;
* :mod:`.output`: consoles, QR codes, the progress bar and summary, JSON;
* :mod:`.errors`: exit codes and one-line, secret-free error messages.

Only what declares the commands loads with the tool (``--help`` imports no SDK module); the
SDK loads in the commands' bodies.
"""

from __future__ import annotations

from .._extras import require_extra

require_extra("cli", "the command-line tools", exit_on_missing=False)

from .app import (  # noqa: E402
    DEBUG_ENV,
    State,
    ToolSpec,
    add_command,
    build_app,
    cli_command,
    entry_point,
    flag,
    new_group,
    run_command,
    state_of,
    step_registry,
)
from .credentials import CredentialStore, SavedCredential  # noqa: E402
from .errors import (  # noqa: E402
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STATE,
    EXIT_USAGE,
    CliError,
    ConfigFileError,
    describe_error,
    exit_code_for,
    exit_code_for_error,
)
from .jobs import (  # noqa: E402
    BatchCommands,
    BatchJobAdapter,
    BatchOptions,
    Change,
    Job,
    JobRun,
    NoChange,
    read_csv_option,
)
from .output import (  # noqa: E402
    BatchProgressDisplay,
    emit_json,
    print_summary,
    render_qr,
    stderr_console,
    stdout_console,
    write_private_file,
)
from .prompts import InteractiveCodeProvider, Prompter, ask_off_loop, confirm_off_loop  # noqa: E402
from .session import (  # noqa: E402
    ApiAdapter,
    Identity,
    Login,
    Prepared,
    Session,
    add_auth_commands,
    open_session,
    prepare,
    run_session,
)
from .settings import (  # noqa: E402
    Setting,
    Settings,
    SettingsResolver,
    default_config_path,
    default_state_dir,
    load_config_file,
)

__all__ = [
    "DEBUG_ENV",
    "EXIT_BUSY",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STATE",
    "EXIT_USAGE",
    "ApiAdapter",
    "BatchCommands",
    "BatchJobAdapter",
    "BatchOptions",
    "BatchProgressDisplay",
    "Change",
    "CliError",
    "ConfigFileError",
    "CredentialStore",
    "Identity",
    "InteractiveCodeProvider",
    "Job",
    "JobRun",
    "Login",
    "NoChange",
    "Prepared",
    "Prompter",
    "SavedCredential",
    "Session",
    "Setting",
    "Settings",
    "SettingsResolver",
    "State",
    "ToolSpec",
    "add_auth_commands",
    "add_command",
    "ask_off_loop",
    "build_app",
    "cli_command",
    "confirm_off_loop",
    "default_config_path",
    "default_state_dir",
    "describe_error",
    "emit_json",
    "entry_point",
    "exit_code_for",
    "exit_code_for_error",
    "flag",
    "load_config_file",
    "new_group",
    "open_session",
    "prepare",
    "print_summary",
    "read_csv_option",
    "render_qr",
    "run_command",
    "run_session",
    "state_of",
    "stderr_console",
    "stdout_console",
    "step_registry",
    "write_private_file",
]
