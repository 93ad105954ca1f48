"""Keep the session JWT out of third-party HTTP trace logs.

httpcore's DEBUG trace logs response headers as ``(b'set-cookie', b'jwt=...')`` tuples, and the
login answer carries the session JWT in a cookie. The filter below masks the values of
credential-bearing headers in those records; it is attached to the trace loggers themselves
(a logger's filters do not apply to records of its child loggers).
"""

from __future__ import annotations

import logging
import re

_TRACE_LOGGERS = ("httpcore.http11", "httpcore.http2", "httpcore2.http11", "httpcore2.http2")
_HEADER_TUPLE = re.compile(
    r"(\(b['\"](?:set-cookie|cookie|authorization|x-auth-token|x-access-token|x-jwt|x-mfa-token|"
    r"x-api-key)['\"],\s*b)(['\"])(?:(?!\2).)*\2",
    re.IGNORECASE,
)
_installed: set[str] = set()


class HeaderTupleRedactor(logging.Filter):
    """Masks credential header values in httpcore trace records."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to break
            return True
        redacted = _HEADER_TUPLE.sub(r"\1\2***\2", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def protect_trace_loggers() -> None:
    """Attach :class:`HeaderTupleRedactor` to httpcore's trace loggers (idempotent)."""
    for name in _TRACE_LOGGERS:
        if name not in _installed:
            logging.getLogger(name).addFilter(HeaderTupleRedactor())
            _installed.add(name)
