"""Pure wire helpers: reading JSON answers, building typed errors, safe path segments.

Nothing here does I/O or imports a transport: the protocol modules of each API (what to send,
how to read the answer) use these helpers and are tested without a network.
"""

from __future__ import annotations

import json as _json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import attrs

from ._httpx import Request, Response
from ._logging import redact_url
from .errors import (
    APIStatusError,
    InvalidInputError,
    RateLimitError,
    ResponseDecodeError,
    status_error_class,
)
from .retry import parse_retry_after

if TYPE_CHECKING:
    import cattrs

    from .converters import LazyConverter

__all__ = [
    "JSON_ERRORS",
    "JSON_EXTENSION",
    "PATH_TEMPLATE_EXTENSION",
    "ErrorBody",
    "build_status_error",
    "decode_error",
    "default_error_mapper",
    "describe",
    "json_or_none",
    "parse_json_body",
    "path_segment",
    "request_id_of",
    "request_of",
    "structure",
]

T = TypeVar("T")

# The path with its secret segments replaced by ``{placeholders}``, for logs and messages.
PATH_TEMPLATE_EXTENSION = "mfa_sdk_path_template"
# The decoded JSON body, kept on the response when the client already parsed it.
JSON_EXTENSION = "mfa_sdk_json"

# What json.loads raises on bad input: a deeply nested body exhausts the recursion limit.
JSON_ERRORS = (ValueError, UnicodeDecodeError, RecursionError)


@attrs.frozen
class ErrorBody:
    """What an API's error answer says, read the same way for every API (each API's
    ``parse_error_body``): its ``code`` (the API's own error code, if it has one), its
    ``message``, the ``details`` worth keeping, and the decoded ``body`` (None when it is not
    JSON). Never raises on a hostile body."""

    code: int | str | None = None
    message: str | None = None
    details: Mapping[str, Any] = attrs.field(factory=dict)
    body: Any = None

    def error(
        self, response: Response, cls: type[APIStatusError] | None = None, **extra: Any
    ) -> APIStatusError:
        """The typed error of ``response`` carrying this body (``cls``: a class other than the
        status's own)."""
        return build_status_error(
            response,
            server_message=self.message,
            error_code=self.code,
            details=self.details,
            body=self.body,
            cls=cls,
            **extra,
        )


def path_segment(value: str, what: str = "id") -> str:
    """``value`` made safe as one URL path segment (percent-encoded), or InvalidInputError.

    Refused before anything is sent: empty or blank values, ``.`` and ``..`` (a URL join would
    climb out of the resource), and control characters. A ``/`` is encoded, never a separator.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty string")
    if value in (".", "..") or len(value) > 1024 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInputError(f"{what} is not a valid identifier")
    return quote(value, safe="")


def request_id_of(response: Response) -> str | None:
    """The server's request id, under any of the usual header names."""
    headers = response.headers
    for name in ("x-request-id", "request-id", "x-amzn-requestid"):
        value = headers.get(name)
        if value:
            return str(value)
    return None


def json_or_none(content: bytes) -> Any:
    """The decoded JSON of ``content``, or None when it is empty or not JSON (never raises)."""
    if not content:
        return None
    try:
        return _json.loads(content)
    except JSON_ERRORS:
        return None


def json_body_ok(response: Response) -> bool:
    """Decode the body of an answer whose Content-Type names JSON once, keeping the result for
    :func:`parse_json_body`; False if broken. (The requestor reads the Content-Type in the same
    pass over the head that checks its size.)"""
    if not response.content:
        return True
    try:
        response.extensions[JSON_EXTENSION] = _json.loads(response.content)
    except JSON_ERRORS:
        return False
    return True


def parse_json_body(response: Response) -> Any:
    """The JSON body, or ResponseDecodeError (never the raw body in the message)."""
    if JSON_EXTENSION in response.extensions:
        return response.extensions[JSON_EXTENSION]
    try:
        return _json.loads(response.content) if response.content else None
    except JSON_ERRORS as exc:
        raise decode_error(
            response, f"response body is not valid JSON ({len(response.content)} bytes)"
        ) from exc


def decode_error(response: Response, what: str) -> ResponseDecodeError:
    """ResponseDecodeError for an answer that cannot be read (``what`` never holds the body)."""
    method, url = describe(request_of(response))
    return ResponseDecodeError(
        f"{method} {url}: {what}",
        status_code=response.status_code,
        method=method,
        url=url,
        request_id=request_id_of(response),
    )


def request_of(response: Response) -> Request | None:
    """The request a response answers, or None when it was built without one."""
    try:
        return response.request
    except RuntimeError:
        return None


def describe(request: Request | None) -> tuple[str | None, str | None]:
    """(method, absolute redacted URL) of a request, for messages and logs."""
    if request is None:
        return None, None
    template = request.extensions.get(PATH_TEMPLATE_EXTENSION)
    return request.method, redact_url(request.url, template if isinstance(template, str) else None)


def structure(converter: LazyConverter | cattrs.Converter, data: Any, cls: type[T], response: Response) -> T:
    """Turn decoded JSON into a model; a shape mismatch becomes ResponseDecodeError."""
    import cattrs  # loaded once the converter is built; an ``import`` of the SDK does not pay for it

    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise decode_error(response, f"response does not match {cls.__name__}") from exc


def status_message(
    method: str | None,
    url: str | None,
    status: int,
    *,
    reason: str = "",
    error_code: int | str | None = None,
    server_message: str | None = None,
    locked_until: datetime | None = None,
) -> str:
    """``POST https://host/api/x -> 401 Unauthorized [code 7]: the server's words``.

    The API's code is left out when it only repeats the message or the reason phrase; the
    reason phrase stands in when the server said nothing; a lockout names its end."""
    message = (server_message or "").strip()[:300]
    reason = reason.strip()
    text = f"{method} {url} -> {status}"
    if reason and reason.lower() != message.lower():
        text += f" {reason}"
    code = str(error_code).strip() if error_code is not None else ""
    if code and code.lower() not in (message.lower(), reason.lower()):
        text += f" [code {code}]"
    if message:
        text += f": {message}"
    if locked_until is not None:
        text += f" (locked until {locked_until.isoformat(timespec='seconds')})"
    return text


def build_status_error(
    response: Response,
    *,
    server_message: str | None = None,
    error_code: int | str | None = None,
    details: Mapping[str, Any] | None = None,
    body: Any = None,
    cls: type[APIStatusError] | None = None,
    **extra: Any,
) -> APIStatusError:
    """An APIStatusError of the right class for ``response``, with a message free of secrets."""
    status = response.status_code
    cls = cls or status_error_class(status)
    method, url = describe(request_of(response))
    locked_until = extra.get("locked_until")
    text = status_message(
        method,
        url,
        status,
        reason=response.reason_phrase,
        error_code=error_code,
        server_message=server_message,
        locked_until=locked_until if isinstance(locked_until, datetime) else None,
    )
    if issubclass(cls, RateLimitError):
        extra.setdefault(
            "retry_after", parse_retry_after(response.headers.get("retry-after"), now=time.time())
        )
    return cls(
        text,
        status_code=status,
        body=body,
        error_code=error_code,
        server_message=server_message,
        details=details,
        response=response,
        method=method,
        url=url,
        request_id=request_id_of(response),
        **extra,
    )


def default_error_mapper(response: Response) -> APIStatusError:
    """Reads ``message`` / ``msg`` / ``error`` from a JSON body when there is one."""
    message: str | None = None
    body = json_or_none(response.content)
    if isinstance(body, dict):
        raw = body.get("message") or body.get("msg") or body.get("error")
        message = raw if isinstance(raw, str) else None
    return build_status_error(response, server_message=message, body=body)
