"""quatrix_async: an async client for the Quatrix API 1.0 with session login, 2FA and PIN.

::

    async with QuatrixClient("https://acme.quatrix.it", email=..., password=...,
                             totp_secret=...) as client:
        profile = await client.profile.get()

The fake server for tests lives in :mod:`quatrix_async.testing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mfa_common.errors import *  # noqa: F403 - listed for type checkers; the set is public_api's
from mfa_common.public_api import *  # noqa: F403 - the errors and code providers of mfa_common
from mfa_common.public_api import __all__ as _public_names

from .api_auth import AuthApi
from .api_mfa import MfaApi
from .api_profile import ProfileApi
from .api_users import UsersApi
from .client import QuatrixClient, api_base_url
from .errors import (
    CaptchaRejectedError,
    QuatrixErrorCode,
    SessionExpiredError,
    UserBlacklistedError,
    map_quatrix_error,
)
from .protocol import LoginStep
from .session_auth import QuatrixSession, QuatrixSessionAuth

if TYPE_CHECKING:
    # For type checkers; at run time these names load with quatrix_async.models on first use.
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

__all__ = [
    "AccountStatus",
    "ActionStatus",
    "AuthApi",
    "AuthType",
    "CaptchaRejectedError",
    "ErrorModel",
    "Group",
    "GroupMetadata",
    "LoginStep",
    "MfaApi",
    "ProfileApi",
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
    "UsersApi",
    "api_base_url",
    "map_quatrix_error",
    *_public_names,
]

# The names of __all__ not bound above are the models. Their module is loaded on first use
# (PEP 562): building its attrs classes is a large part of what an import would cost.
_MODEL_NAMES = frozenset(__all__).difference(globals())


def __getattr__(name: str) -> Any:
    if name in _MODEL_NAMES or name == "models":
        models = importlib.import_module(".models", __name__)
        value = models if name == "models" else getattr(models, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
