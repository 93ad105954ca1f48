"""quatrix_async: an async client for the Quatrix API 1.0 with session login, 2FA and PIN.

::

    async with QuatrixClient("https://acme.quatrix.it", email=..., password=...,
                             totp_secret=...) as client:
        profile = await client.profile.get()

The fake server for tests lives in :mod:`quatrix_async.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfa_common._lazy import lazy_exports
from mfa_common.errors import *  # noqa: F403 - listed for type checkers; the set is public_api's
from mfa_common.public_api import DEFERRED as _PUBLIC_DEFERRED
from mfa_common.public_api import __all__ as _public_names

if TYPE_CHECKING:
    # For type checkers; at run time these names load on first use (see the end).
    from mfa_common.public_api import *  # noqa: F403 - the errors and code providers of mfa_common

    from .api_mfa import MfaAPI
    from .api_profile import ProfileAPI
    from .api_session import SessionAPI
    from .api_users import UsersAPI
    from .auth import QuatrixSession, QuatrixSessionAuth
    from .client import QuatrixClient, api_base_url
    from .errors import (
        CaptchaRejectedError,
        QuatrixErrorCode,
        SessionExpiredError,
        UserBlacklistedError,
        map_error,
    )
    from .models import (
        AccountStatus,
        ActionStatus,
        AuthType,
        ErrorModel,
        Group,
        GroupMetadata,
        LoginResult,
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
    "SessionAPI",
    "AuthType",
    "CaptchaRejectedError",
    "ErrorModel",
    "Group",
    "GroupMetadata",
    "LoginResult",
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
    "map_error",
    *_public_names,
]

# Every name but the errors loads with its first use: the client with its HTTP machinery when a
# program builds one, the models (building their attrs classes is a large part of an import)
# with the first call. A command-line tool printing its help loads neither.
_SOURCES = {
    ".api_mfa": ("MfaAPI",),
    ".api_profile": ("ProfileAPI",),
    ".api_session": ("SessionAPI",),
    ".api_users": ("UsersAPI",),
    ".client": ("QuatrixClient", "api_base_url"),
    ".errors": (
        "CaptchaRejectedError",
        "QuatrixErrorCode",
        "SessionExpiredError",
        "UserBlacklistedError",
        "map_error",
    ),
    ".auth": ("QuatrixSession", "QuatrixSessionAuth"),
}

if not TYPE_CHECKING:  # type checkers take the names from the imports above
    _DEFERRED = {name: source for source, names in _SOURCES.items() for name in names}
    _DEFERRED.update(_PUBLIC_DEFERRED)
    # The names of __all__ left are the models.
    _MODELS = frozenset(__all__).difference(globals(), _DEFERRED)
    _DEFERRED.update({name: ".models" for name in [*_MODELS, "models"]})
    __getattr__, __dir__ = lazy_exports(__name__, _DEFERRED, __all__)
