"""Manual login steps under the call deadline.

A login started by a request runs inside that request's deadline; one started by hand
(``client.login()``, ``client.session.login_mfa(...)``) runs under
:meth:`mfa_common.requestor.Requestor.within_deadline`, so a silent server ends in
:class:`~mfa_common.errors.APITimeoutError` too, never a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from ..clock import SYSTEM_CLOCK, Clock
from ..code_providers import CodeProvider, StaticCodeProvider
from ..secret import Secret
from .driver import drive
from .machine import LoginFlow

if TYPE_CHECKING:
    from ..options import RequestOptions
    from ..requestor import Requestor

__all__ = ["drive_by_hand"]

T = TypeVar("T")


async def drive_by_hand(
    requestor: Requestor,
    start: Callable[[], LoginFlow[T]],
    *,
    code: Secret[str] | CodeProvider | None = None,
    options: RequestOptions | None = None,
    what: str,
    clock: Clock | None = None,
) -> T:
    """Run one step of a login machine for a manual-step method: through ``requestor``, under
    its deadline, with the caller's ``code`` (a code, or a provider of one, if the step needs
    one) sent once: a code the server refused unread is not resent (the caller decides).
    ``clock`` dates the answers (an MFA token's expiry)."""
    provider = StaticCodeProvider(code, kind="other") if isinstance(code, Secret) else code
    return await requestor.within_deadline(
        lambda: drive(
            start,
            send=requestor.send,
            policy=attrs.evolve(requestor.retry_policy, code_step_retries=0),
            provider_for=lambda _: provider,
            clock=clock or SYSTEM_CLOCK,
            api=requestor.api_name,
        ),
        options=options,
        what=what,
    )
