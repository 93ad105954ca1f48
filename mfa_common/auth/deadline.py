"""Explicit logins and manual login steps under the client's total deadline.

A login started by a request runs inside that request's deadline; one started by hand
(``client.login()``, ``client.auth_api.login_mfa(...)``) runs under :func:`login_within_deadline`,
so a silent server ends in :class:`~mfa_common.errors.APITimeoutError` too, never a hang.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from ..errors import APITimeoutError

if TYPE_CHECKING:
    from ..client import BaseClient, RequestOptions

__all__ = ["login_within_deadline"]

T = TypeVar("T")


async def login_within_deadline(
    client: BaseClient,
    func: Callable[[], Awaitable[T]],
    *,
    options: RequestOptions | None = None,
    what: str,
) -> T:
    """``await func()`` within the client's deadline (or ``options.deadline``).

    Only the deadline's own expiry becomes an APITimeoutError: a ``TimeoutError`` raised inside
    ``func`` (a code provider's own timeout) goes through unchanged."""
    deadline = client._deadline
    if options is not None and options.deadline is not None:
        deadline = options.deadline
    if deadline is None:
        return await func()
    with anyio.move_on_after(deadline) as scope:
        return await func()
    assert scope.cancelled_caught
    raise APITimeoutError(f"{what}: no answer within the {deadline} s deadline", method=None)
