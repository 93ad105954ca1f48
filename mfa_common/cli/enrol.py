"""The enrolment steps every tool shares: show the new secret (QR code, optional PNG file and
text), then confirm it with a code typed from the app, a few attempts, off the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from ..secret import Secret
from .app import State, flag
from .errors import CliError
from .output import render_qr, stderr_console, stdout_console, write_private_file
from .prompts import ask_off_loop

__all__ = [
    "ENROL_ATTEMPTS",
    "SAVE_QR",
    "SHOW_SECRET",
    "confirm_with_code",
    "enrol_preflight",
    "show_new_secret",
]

T = TypeVar("T")

#: Attempts at typing the code that confirms a new 2FA secret.
ENROL_ATTEMPTS = 3

SAVE_QR: Any = typer.Option(
    None, "--save-qr", help="Also save the QR code PNG to this new file (owner-only)."
)
SHOW_SECRET: Any = flag("Also print the secret as text, for typing into an app by hand.", "--show-secret")


def enrol_preflight(save_qr: Path | None, *, image_only: bool) -> Callable[[State], None]:
    """The checks an enrolment makes before it logs in: a person at a terminal (to scan the QR
    code and type a code), and, where the server sends the QR code ``image_only``, either the
    ``qr`` extra to draw it here or ``--save-qr`` to scan it from a file."""

    def check(state: State) -> None:
        from .._extras import has_extra, install_hint

        if not state.prompter.interactive():
            raise CliError(
                "mfa enrol needs a person at a terminal: it shows a QR code to scan, then asks for a "
                "code from the app (nothing was sent)"
            )
        if image_only and save_qr is None and not has_extra("qr"):
            raise CliError(
                "the server sends the QR code only as an image: install the qr extra to draw it here "
                f"({install_hint('qr')}), or pass --save-qr FILE to save it and scan that (nothing was sent)"
            )

    return check


def show_new_secret(
    uri: Secret[str] | None,
    qr_png: Secret[bytes] | None,
    secret: Secret[str] | None,
    *,
    save_qr: Path | None,
    show_secret: bool,
    no_uri: str = "the server sent the QR code only as an image",
) -> None:
    """Draw the QR code of ``uri``, save the server's PNG when asked, print the secret when asked.

    Without ``uri`` (``no_uri`` says why) nothing can be drawn: the server's image is saved with
    ``--save-qr`` and scanned from there, else the command stops before anything is enabled."""
    out, err = stdout_console(), stderr_console()
    if save_qr is not None and qr_png is not None:
        write_private_file(save_qr, qr_png.reveal())
        err.print(f"QR code saved to {save_qr} (owner-only).")
    if uri is not None:
        out.print("Scan this QR code with your authenticator app:")
        out.print(render_qr(uri), markup=False, highlight=False)
    elif save_qr is not None and qr_png is not None:
        err.print(f"{no_uri}: scan the image saved to {save_qr} with your authenticator app.", markup=False)
    else:
        raise CliError(
            f"{no_uri}; the server's QR image is available: pass --save-qr PATH to save it and scan that"
        )
    if show_secret and secret is not None:
        out.print(f"Secret (keep it private): {secret.reveal()}", markup=False)


async def confirm_with_code(
    state: State,
    confirm: Callable[[str], Awaitable[T]],
    rejected: type[Exception] | tuple[type[Exception], ...],
) -> T:
    """Ask for a code from the app and ``confirm(code)``; a ``rejected`` code is asked again, up
    to :data:`ENROL_ATTEMPTS` times (the last rejection is raised)."""
    for attempt in range(1, ENROL_ATTEMPTS + 1):
        code = await ask_off_loop(state.prompter, "Code from your authenticator app", hide=True)
        try:
            return await confirm(code)
        except rejected:
            if attempt == ENROL_ATTEMPTS:
                raise
            stderr_console().print("That code was not accepted; wait for the next one and try again.")
    raise AssertionError("unreachable")  # pragma: no cover
