"""The X-MFA-Token exchange (ShellHub-style ``MfaApi``): models, wire protocol, client, auth
backend and enrolment helper."""

from __future__ import annotations

from ..errors import *  # noqa: F403 - listed for type checkers; the set is public_api's
from ..public_api import *  # noqa: F403 - the errors and code providers of mfa_common
from ..public_api import __all__ as _public_names
from .auth import JwtCredential, XMfaTokenAuth
from .client import SessionTokenAuth, XMfaClient, normalize_email_code
from .enrolment import Enrolment, enrol_totp
from .errors import (
    EmailCodeRejectedError,
    MfaEnableOutcomeUnknownError,
    MfaEnrolmentError,
    MfaNotEnabledError,
    RecoveryCodesNotStoredError,
    RecoveryWindowClosedError,
)
from .models import (
    ApiError,
    LoginResult,
    MfaAuth,
    MfaDisable,
    MfaEnable,
    MfaGenerate,
    MfaRecover,
    MfaReset,
    Origin,
    RecoverResult,
    RequestResetMFA,
    Role,
    UserAuth,
)
from .protocol import LoginAnswer, Operation, XMfaErrorMapper, XMfaPaths, classify_login

__all__ = [
    "ApiError",
    "EmailCodeRejectedError",
    "Enrolment",
    "JwtCredential",
    "LoginAnswer",
    "LoginResult",
    "MfaAuth",
    "MfaDisable",
    "MfaEnable",
    "MfaEnableOutcomeUnknownError",
    "MfaEnrolmentError",
    "MfaGenerate",
    "MfaNotEnabledError",
    "MfaRecover",
    "MfaReset",
    "Operation",
    "Origin",
    "RecoverResult",
    "RecoveryCodesNotStoredError",
    "RecoveryWindowClosedError",
    "RequestResetMFA",
    "Role",
    "SessionTokenAuth",
    "UserAuth",
    "XMfaClient",
    "XMfaErrorMapper",
    "XMfaPaths",
    "XMfaTokenAuth",
    "classify_login",
    "enrol_totp",
    "normalize_email_code",
    *_public_names,
]
