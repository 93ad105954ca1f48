"""The X-MFA-Token exchange (ShellHub-style ``MfaApi``): models, wire protocol, client, auth
backend and enrolment helper.

The package has the modules of every API (``client``, ``auth``, ``login_machine``,
``protocol``, ``errors``, ``models``, ``api_<group>`` on ``_base``) but no ``jobs`` and no
``cli``: the API has no administration operations, so there is no batch job over other users
to run. Its fake server is :mod:`mfa_common.xmfa.testing`.
"""

from __future__ import annotations

from ..errors import *  # noqa: F403 - listed for type checkers; the set is public_api's
from ..public_api import *  # noqa: F403 - the errors and code providers of mfa_common
from ..public_api import __all__ as _public_names
from .api_mfa import MfaAPI
from .api_session import SessionAPI
from .api_user import UserAPI
from .auth import JwtCredential, SessionTokenAuth, XMfaTokenAuth
from .client import XMfaClient
from .enrolment import Enrolment, enrol_totp
from .errors import (
    EmailCodeRejectedError,
    MfaEnableOutcomeUnknownError,
    MfaEnrolmentError,
    MfaNotEnabledError,
    RecoveryCodesNotStoredError,
    RecoveryWindowClosedError,
    map_error,
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
from .protocol import LoginAnswer, Operation, XMfaPaths, classify_login, normalize_email_code

__all__ = [
    "ApiError",
    "EmailCodeRejectedError",
    "Enrolment",
    "JwtCredential",
    "LoginAnswer",
    "LoginResult",
    "MfaAPI",
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
    "SessionAPI",
    "SessionTokenAuth",
    "UserAPI",
    "UserAuth",
    "XMfaClient",
    "XMfaPaths",
    "XMfaTokenAuth",
    "classify_login",
    "enrol_totp",
    "map_error",
    "normalize_email_code",
    *_public_names,
]
