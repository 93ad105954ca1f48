"""Errors specific to the X-MFA-Token API, each a subclass of the closest core error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import MfaCodeRejectedError, MfaError, RecoveryCodeRejectedError
from ..secret import Secret

__all__ = [
    "EmailCodeRejectedError",
    "MfaEnableOutcomeUnknownError",
    "MfaEnrolmentError",
    "MfaNotEnabledError",
    "RecoveryCodesNotStoredError",
    "RecoveryWindowClosedError",
]


class EmailCodeRejectedError(MfaCodeRejectedError):
    """The two e-mail codes of an MFA reset (or of a disable by e-mail codes) were refused."""


class RecoveryWindowClosedError(RecoveryCodeRejectedError):
    """A disable without a code was refused: no open recovery window (10 minutes after
    ``mfaRecover``), or its single use was already spent."""


class MfaEnrolmentError(MfaError):
    """Enrolment did not complete. ``mfa_enabled`` says where the account stands:
    ``False`` (nothing changed), ``True`` (MFA is on) or ``None`` (unknown)."""

    mfa_enabled: bool | None = None


class MfaNotEnabledError(MfaEnrolmentError):
    """Enrolment failed and MFA is **not** enabled; the cause is chained (``__cause__``)."""

    mfa_enabled = False


class RecoveryCodesNotStoredError(MfaEnrolmentError):
    """MFA **is** enabled, but the recovery codes could not be stored.

    ``codes`` holds them (as Secrets) so the caller can still save them; ``path`` is where the
    store was to be written, if anywhere.
    """

    mfa_enabled = True

    def __init__(self, message: str, *, codes: Sequence[Secret[str]], path: str | None) -> None:
        super().__init__(message)
        self.codes: tuple[Secret[str], ...] = tuple(codes)
        self.path = path


class MfaEnableOutcomeUnknownError(MfaEnrolmentError):
    """The enable request was sent but its outcome could not be learned (connection lost and
    the follow-up check failed too). ``codes`` and ``secret`` are kept so that, if MFA turns out
    to be on, the caller still has them."""

    mfa_enabled = None

    def __init__(self, message: str, *, codes: Sequence[Secret[str]], secret: Secret[str], **kw: Any) -> None:
        super().__init__(message)
        self.codes: tuple[Secret[str], ...] = tuple(codes)
        self.secret = secret
