"""Manual login steps under the client's total deadline.

A login started by a request runs inside that request's deadline; one started by hand
(``client.login()``, ``client.session.login_mfa(...)``) runs under
:meth:`mfa_common.client.BaseClient.within_deadline`,
so a silent server ends in :class:`~mfa_common.errors.APITimeoutError` too, never a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..clock import SYSTEM_CLOCK, Clock
from ..code_providers import StaticCodeProvider
from ..secret import Secret
from .driver import drive
from .machine import LoginFlow

if TYPE_CHECKING:
    from ..client import BaseClient, RequestOptions

__all__ = ["drive_by_hand"]

T = TypeVar("T")


async def drive_by_hand(
    client: BaseClient,
    start: Callable[[], LoginFlow[T]],
    *,
    code: Secret[str] | None = None,
    options: RequestOptions | None = None,
    what: str,
    clock: Clock | None = None,
) -> T:
    """Run one step of a login machine for a manual-step method: through the client's sender,
    under its deadline, with the caller's ``code`` (if the step needs one) sent once: a code
    the server refused unread is not repeated (the caller decides). ``clock`` dates the answers
    (an MFA token's expiry)."""
    provider = StaticCodeProvider(code, kind="other") if code is not None else None
    return await client.within_deadline(
        lambda: drive(
            start,
            send=client.send_unauthenticated,
            provider_for=lambda _: provider,
            clock=clock or SYSTEM_CLOCK,
            code_retries=0,
            api=client.api_name,
        ),
        options=options,
        what=what,
    )
