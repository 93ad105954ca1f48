"""Former home of the command-line helpers; they live in :mod:`mfa_common.cli` now.

Kept as a re-export so code written against it keeps importing; new code imports
``mfa_common.cli``.
"""

from __future__ import annotations

from .cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    BatchProgressDisplay,
    CliError,
    ConfigFileError,
    InteractiveCodeProvider,
    Prompter,
    Setting,
    Settings,
    SettingsResolver,
    cli_command,
    default_config_path,
    describe_error,
    emit_json,
    exit_code_for,
    exit_code_for_error,
    load_config_file,
    print_summary,
    render_qr,
    run_command,
    stderr_console,
    stdout_console,
    write_private_file,
)

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
