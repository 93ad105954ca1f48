"""metalcloud_async: async client of the MetalCloud (MetalSoft) REST API v2, with a fake server.

::

    async with MetalCloudClient("https://metal.example.com", api_key=key) as client:
        me = await client.user.get()
        async for user in client.users.list(filters={"archived": False}):
            ...
        await client.users.force_2fa_reenrolment(user_id)  # a new authenticator at next login
        await client.users.ssh_keys.add(user_id, "ssh-ed25519 AAAA... alice@laptop")

Batch jobs over many users (CSV in, journaled, resumable): :mod:`metalcloud_async.jobs`.

Sources of the wire behaviour: the official OpenAPI document (MetalSoft REST API 2.0), the
official Go SDK and CLI. Behaviour they leave open is marked UNCONFIRMED in the docstrings.
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

    from .api_session import SessionAPI
    from .api_user import UserAPI
    from .api_users import UsersAPI
    from .auth import JwtSession, MetalCloudApiKeyAuth, MetalCloudLoginAuth
    from .client import MetalCloudClient
    from .errors import (
        DelegateAlreadyAddedError,
        EmailAlreadyInUseError,
        EmailAlreadyVerifiedError,
        MetalCloudMfaRequiredError,
        ReenrolmentAlreadyPendingError,
        SshKeyAlreadyPresentError,
        TwoFactorAlreadyDisabledError,
        TwoFactorAlreadyEnabledError,
        TwoFactorCodeRejectedError,
        TwoFactorEnrolmentRequiredError,
    )
    from .models import (
        AccessLevel,
        AdminPasswordRevealPermissions,
        ApiKeyRegeneration,
        AuthenticationUserProvider,
        EmailStatus,
        GenericGUISettings,
        Language,
        LastLoginType,
        Link,
        LoginResult,
        LogoutResponse,
        PaginationLinks,
        PaginationMeta,
        PlanType,
        Provider,
        SpecialPermissions,
        SshKeyStatus,
        SuspendReasonType,
        TwoFactorAuthenticationSecret,
        UpdateUser,
        User,
        UserApiKey,
        UserConfiguration,
        UserInfo,
        UserLimits,
        UserLimitsDisabled,
        UserMeta,
        UserPaginatedList,
        UserPermissions,
        UserSshKey,
        UserSuspendReason,
    )
    from .protocol import LATEST, ListQuery, filter_eq, filter_in, filter_not

__all__ = [
    "LATEST",
    "AccessLevel",
    "AdminPasswordRevealPermissions",
    "ApiKeyRegeneration",
    "SessionAPI",
    "AuthenticationUserProvider",
    "UserAPI",
    "DelegateAlreadyAddedError",
    "EmailAlreadyInUseError",
    "EmailAlreadyVerifiedError",
    "EmailStatus",
    "GenericGUISettings",
    "JwtSession",
    "Language",
    "LastLoginType",
    "Link",
    "ListQuery",
    "LoginResult",
    "LogoutResponse",
    "MetalCloudApiKeyAuth",
    "MetalCloudClient",
    "MetalCloudLoginAuth",
    "MetalCloudMfaRequiredError",
    "PaginationLinks",
    "PaginationMeta",
    "PlanType",
    "Provider",
    "ReenrolmentAlreadyPendingError",
    "SpecialPermissions",
    "SshKeyAlreadyPresentError",
    "SshKeyStatus",
    "SuspendReasonType",
    "TwoFactorAlreadyDisabledError",
    "TwoFactorAlreadyEnabledError",
    "TwoFactorAuthenticationSecret",
    "TwoFactorCodeRejectedError",
    "TwoFactorEnrolmentRequiredError",
    "UpdateUser",
    "User",
    "UserApiKey",
    "UserConfiguration",
    "UserInfo",
    "UserLimits",
    "UserLimitsDisabled",
    "UserMeta",
    "UserPaginatedList",
    "UserPermissions",
    "UserSshKey",
    "UserSuspendReason",
    "UsersAPI",
    "filter_eq",
    "filter_in",
    "filter_not",
    *_public_names,
]

# Every name but the errors loads with its first use: the client with its HTTP machinery when a
# program builds one, the models with the first call that needs them. A command-line tool
# printing its help loads neither.
_SOURCES = {
    ".api_session": ("SessionAPI",),
    ".api_user": ("UserAPI",),
    ".api_users": ("UsersAPI",),
    ".auth": ("JwtSession", "MetalCloudApiKeyAuth", "MetalCloudLoginAuth"),
    ".client": ("MetalCloudClient",),
    ".errors": (
        "DelegateAlreadyAddedError",
        "EmailAlreadyInUseError",
        "EmailAlreadyVerifiedError",
        "MetalCloudMfaRequiredError",
        "ReenrolmentAlreadyPendingError",
        "SshKeyAlreadyPresentError",
        "TwoFactorAlreadyDisabledError",
        "TwoFactorAlreadyEnabledError",
        "TwoFactorCodeRejectedError",
        "TwoFactorEnrolmentRequiredError",
    ),
    ".protocol": ("LATEST", "ListQuery", "filter_eq", "filter_in", "filter_not"),
}

if not TYPE_CHECKING:  # type checkers take the names from the imports above
    _DEFERRED = {name: source for source, names in _SOURCES.items() for name in names}
    _DEFERRED.update(_PUBLIC_DEFERRED)
    # The names of __all__ left are the models.
    _DEFERRED.update({name: ".models" for name in frozenset(__all__).difference(globals(), _DEFERRED)})
    __getattr__, __dir__ = lazy_exports(__name__, _DEFERRED, __all__)
