"""Logging through the standard ``logging`` module, with every secret redacted.

The SDK logs method, redacted URL, status, elapsed time, attempt number and request id; never
headers or bodies. :func:`redact_url` removes query values and path segments that may carry
credentials; :class:`RedactingFilter` is offered to applications that log httpx themselves.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import OrderedDict
from typing import Any
from urllib.parse import quote, unquote

from . import _constants as C
from ._httpx import URL

logger = logging.getLogger(C.LOGGER_NAME)


# (pattern, replacement) pairs of redact_text, in order; compiled by the first redaction
# (five case-insensitive patterns are a noticeable part of an import of the SDK otherwise).
@functools.cache
def _redactions() -> tuple[tuple[re.Pattern[str], str], ...]:
    fields = "|".join(re.escape(f) for f in sorted(C.SENSITIVE_FIELDS))
    headers = "|".join(re.escape(h) for h in sorted(C.SENSITIVE_HEADERS))
    return (
        (re.compile(r'("(?:' + fields + r')"\s*:\s*)"[^"]*"', re.IGNORECASE), r'\1"***"'),
        # Header tuples as httpcore's DEBUG trace prints them: (b'x-mfa-token', b'...').
        (re.compile(r"""(\(b?['"](?:""" + headers + r""")['"],\s*b?['"])[^'"]*""", re.IGNORECASE), r"\1***"),
        (re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=:-]+", re.IGNORECASE), r"\1 ***"),
        (re.compile(r"([?&](?:" + fields + r")=)[^&\s\"'#]+", re.IGNORECASE), r"\1***"),
        (re.compile(r"((?:" + headers + r")\s*[:=]\s*)[^\s,'\"]+", re.IGNORECASE), r"\1***"),
    )


def redact_url(url: URL | str, path_template: str | None = None) -> str:
    """The URL without query values (names kept); with a template, without secret path parts."""
    url = URL(url) if isinstance(url, str) else url
    if path_template is not None:
        template = path_template.split("?", 1)[0]  # query values are masked below, from the URL
        if not template.startswith("/"):
            # Relative to the client's base path: it stands for as many trailing segments.
            kept = url.path.split("/")[: -(template.count("/") + 1)]
            template = "/".join(kept) + "/" + template
        text = str(url.copy_with(raw_path=b"/")).rstrip("/") + template
    else:
        text = str(url.copy_with(query=None))
    if url.query:
        names = sorted({key for key, _ in url.params.multi_items()})
        text += "?" + "&".join(f"{n}=***" for n in names)
    return text


# Secret fragments the SDK put into URLs (a reset token as a path segment): masked wherever
# they appear in a third-party log line. Bounded: the oldest are forgotten first.
_MASKED: OrderedDict[str, None] = OrderedDict()
_MASKED_MAX = 1024


def mask_in_logs(fragment: str) -> None:
    """Mask ``fragment`` (and its URL-quoted form) in every redacted log line from now on."""
    if len(fragment) < 4:
        return
    for variant in {fragment, quote(fragment, safe="")}:
        _MASKED[variant] = None
        _MASKED.move_to_end(variant)
    while len(_MASKED) > _MASKED_MAX:
        _MASKED.popitem(last=False)


def mask_templated_segments(raw_path: str, template: str) -> None:
    """Mask the segments of ``raw_path`` (still percent-encoded, so a ``/`` inside a segment
    does not split it) that stand where ``template`` has ``{placeholders}``."""
    actual = [seg for seg in raw_path.split("?")[0].split("/") if seg]
    wanted = [seg for seg in template.split("?")[0].split("/") if seg]
    for offset in range(1, min(len(actual), len(wanted)) + 1):
        if wanted[-offset].startswith("{") and wanted[-offset].endswith("}"):
            mask_in_logs(actual[-offset])
            mask_in_logs(unquote(actual[-offset]))


def redact_text(text: str) -> str:
    """Mask credential-looking fragments in free text (JSON fields, auth headers, bearer tokens)."""
    for fragment in list(_MASKED):
        if fragment in text:
            text = text.replace(fragment, "***")
    for pattern, replacement in _redactions():
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in messages of any logger (e.g. ``httpx``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_PROTECTED: set[str] = set()


_THIRD_PARTY_LOGGERS = (
    "httpx",
    *(
        f"{lib}{part}"
        for lib in ("httpcore", "httpcore2")
        for part in ("", ".connection", ".connection_pool", ".http11", ".http2", ".proxy", ".socks")
    ),
    "aiohttp.client",
    "aiohttp.internal",
)


def protect_third_party_loggers(names: tuple[str, ...] = _THIRD_PARTY_LOGGERS) -> None:
    """Attach :class:`RedactingFilter` to the HTTP libraries' loggers: httpx logs full URLs at
    INFO, httpcore's DEBUG trace prints response headers. Logger filters are not inherited, so
    each child logger is named. Idempotent."""
    for name in names:
        if name not in _PROTECTED:
            logging.getLogger(name).addFilter(RedactingFilter())
            _PROTECTED.add(name)


def debug_enabled() -> bool:
    return logger.isEnabledFor(logging.DEBUG)


def log_debug(message: str, *args: Any) -> None:
    logger.debug(message, *args)
