"""quatrix_async: an async client for the Quatrix API 1.0 with session login, 2FA and PIN.

::

    async with QuatrixClient("https://acme.quatrix.it", email=..., password=...,
                             totp_secret=...) as client:
        profile = await client.profile.get()

The fake server for tests lives in :mod:`quatrix_async.testing`.
"""

from __future__ import annotations

from mfa_common.errors import *  # noqa: F403 - listed for type checkers; the set is public_api's
from mfa_common.public_api import *  # noqa: F403 - the errors and code providers of mfa_common
from mfa_common.public_api import __all__ as _public_names

from .api_mfa import MfaAPI
from .api_profile import ProfileAPI
from .api_session import SessionAPI
from .api_users import UsersAPI
from .client import QuatrixClient, api_base_url
from .errors import (
    CaptchaRejectedError,
    QuatrixErrorCode,
    SessionExpiredError,
    UserBlacklistedError,
    map_quatrix_error,
)
from .models import (
    AccountStatus,
    ActionStatus,
    AuthType,
    ErrorModel,
    Group,
    GroupMetadata,
    ProfileInfoResp,
    ProfileRemoveMfaReq,
    ProfileRemoveMfaResp,
    ProfileResp,
    ProfileSetMfaReq,
    ProfileSetMfaResp,
    ProfileSetPasswordReq,
    ProfileSetPasswordResp,
    ProfileSetReq,
    ProfileSetResp,
    ProfileShareTypes,
    ResetAuthType,
    SessionLoginPostResp,
    SessionLoginResp,
    SessionUnblockCaptchaResp,
    ShortUserService,
    SuperAdmin,
    TwoFactorSecret,
    UnblockCaptchaReq,
    UserRemoveMfaReq,
    UserResetMfaReq,
    UserResp,
    UserSetMfaReq,
)
from .protocol import LoginStep
from .session_auth import QuatrixSession, QuatrixSessionAuth

__all__ = [
    "AccountStatus",
    "ActionStatus",
    "SessionAPI",
    "AuthType",
    "CaptchaRejectedError",
    "ErrorModel",
    "Group",
    "GroupMetadata",
    "LoginStep",
    "MfaAPI",
    "ProfileAPI",
    "ProfileInfoResp",
    "ProfileRemoveMfaReq",
    "ProfileRemoveMfaResp",
    "ProfileResp",
    "ProfileSetMfaReq",
    "ProfileSetMfaResp",
    "ProfileSetPasswordReq",
    "ProfileSetPasswordResp",
    "ProfileSetReq",
    "ProfileSetResp",
    "ProfileShareTypes",
    "QuatrixClient",
    "QuatrixErrorCode",
    "QuatrixSession",
    "QuatrixSessionAuth",
    "ResetAuthType",
    "SessionExpiredError",
    "SessionLoginPostResp",
    "SessionLoginResp",
    "SessionUnblockCaptchaResp",
    "ShortUserService",
    "SuperAdmin",
    "TwoFactorSecret",
    "UnblockCaptchaReq",
    "UserBlacklistedError",
    "UserRemoveMfaReq",
    "UserResetMfaReq",
    "UserResp",
    "UserSetMfaReq",
    "UsersAPI",
    "api_base_url",
    "map_quatrix_error",
    *_public_names,
]
