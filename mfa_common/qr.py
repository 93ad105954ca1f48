"""QR codes of ``otpauth://`` URIs drawn as text, to enrol an authenticator from a terminal.

::

    from mfa_common import print_qr

    print_qr(enrolment.uri)          # to stdout
    text = render_qr(enrolment.uri)  # or keep the text

Drawing needs segno, which comes with the ``cli`` extra (``pip install 'mfa-sdks[cli]'``);
without it both functions raise :class:`ImportError` naming that extra. The URI holds the TOTP
secret: show it only to the person enrolling, and never log the text.
"""

from __future__ import annotations

import io
import sys
from typing import Any, TextIO

from .secret import Secret, reveal

__all__ = ["print_qr", "render_qr"]

_MISSING_SEGNO = "drawing a QR code needs segno: pip install 'mfa-sdks[cli]'"


def _segno() -> Any:
    try:
        import segno
    except ImportError as exc:
        raise ImportError(_MISSING_SEGNO, name="segno") from exc
    return segno


def render_qr(uri: str | Secret[str], *, border: int = 2) -> str:
    """The QR code of ``uri`` as text: Unicode half blocks, two rows of modules per line.

    Dark modules are drawn as light blocks on the terminal's background, so the code scans on
    dark-background terminals (the usual case); ``border`` is the quiet zone, in modules.
    """
    buffer = io.StringIO()
    _segno().make(reveal(uri), error="m").terminal(out=buffer, compact=True, border=border)
    return buffer.getvalue()


def print_qr(uri: str | Secret[str], file: TextIO | None = None, *, border: int = 2) -> None:
    """Write :func:`render_qr` of ``uri`` to ``file`` (standard output by default)."""
    out = sys.stdout if file is None else file
    out.write(render_qr(uri, border=border))
    out.flush()
