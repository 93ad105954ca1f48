"""Logging through the standard ``logging`` module, with every secret redacted.

The SDK logs method, redacted URL, status, elapsed time, attempt number and request id; never
headers or bodies. :func:`redact_url` removes query values and path segments that may carry
credentials; :class:`RedactingFilter` is offered to applications that log httpx themselves.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from . import _constants as C
from ._httpx import URL

logger = logging.getLogger(C.LOGGER_NAME)

_JSON_SECRET = re.compile(
    r'("(?:' + "|".join(re.escape(f) for f in sorted(C.SENSITIVE_FIELDS)) + r')"\s*:\s*)"[^"]*"',
    re.IGNORECASE,
)
_HEADER_SECRET = re.compile(
    r"((?:" + "|".join(re.escape(h) for h in sorted(C.SENSITIVE_HEADERS)) + r")\s*[:=]\s*)[^\s,'\"]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=:-]+", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"([?&](?:" + "|".join(re.escape(f) for f in sorted(C.SENSITIVE_FIELDS)) + r")=)[^&\s\"'#]+",
    re.IGNORECASE,
)


def redact_url(url: URL | str, path_template: str | None = None) -> str:
    """The URL without query values (names kept); with a template, without secret path parts."""
    url = URL(url) if isinstance(url, str) else url
    if path_template is not None:
        base = str(url.copy_with(raw_path=b"/")).rstrip("/")
        text = base + path_template
    else:
        text = str(url.copy_with(query=None))
    if url.query:
        names = sorted({key for key, _ in url.params.multi_items()})
        text += "?" + "&".join(f"{n}=***" for n in names)
    return text


def redact_text(text: str) -> str:
    """Mask credential-looking fragments in free text (JSON fields, auth headers, bearer tokens)."""
    text = _JSON_SECRET.sub(r'\1"***"', text)
    text = _BEARER.sub(r"\1 ***", text)
    text = _QUERY_SECRET.sub(r"\1***", text)
    return _HEADER_SECRET.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in messages of any logger (e.g. ``httpx``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_PROTECTED: set[str] = set()


def protect_third_party_loggers(names: tuple[str, ...] = ("httpx", "httpcore", "aiohttp.client")) -> None:
    """Attach :class:`RedactingFilter` to the HTTP libraries' loggers (httpx logs full URLs,
    query tokens included, at INFO). Idempotent."""
    for name in names:
        if name not in _PROTECTED:
            logging.getLogger(name).addFilter(RedactingFilter())
            _PROTECTED.add(name)


def debug_enabled() -> bool:
    return logger.isEnabledFor(logging.DEBUG)


def log_debug(message: str, *args: Any) -> None:
    logger.debug(message, *args)
