"""metalcloud_async: async client of the MetalCloud (MetalSoft) REST API v2, with a fake server.

::

    async with MetalCloudClient("https://metal.example.com", api_key=key) as client:
        me = await client.user.get()
        async for user in client.users.list(filters={"archived": False}):
            ...

Sources of the wire behaviour: the official OpenAPI document (MetalSoft REST API 2.0), the
official Go SDK and CLI. Behaviour they leave open is marked UNCONFIRMED in the docstrings.
"""

from __future__ import annotations

from mfa_common.errors import *  # noqa: F403 - listed for type checkers; the set is public_api's
from mfa_common.public_api import *  # noqa: F403 - the errors and code providers of mfa_common
from mfa_common.public_api import __all__ as _public_names

from .auth import JwtSession, LoginStep, MetalCloudApiKeyAuth, MetalCloudLoginAuth
from .client import AuthAPI, CurrentUserAPI, MetalCloudClient, UsersAPI
from .errors import (
    MetalCloudMfaRequiredError,
    TwoFactorAlreadyDisabledError,
    TwoFactorAlreadyEnabledError,
    TwoFactorCodeRejectedError,
)
from .models import (
    AccessLevel,
    ApiKeyRegeneration,
    EmailStatus,
    Language,
    LastLoginType,
    Link,
    LogoutResponse,
    PaginationLinks,
    PaginationMeta,
    PlanType,
    Provider,
    SuspendReasonType,
    TwoFactorAuthenticationSecret,
    User,
    UserApiKey,
    UserInfo,
    UserPaginatedList,
    UserSuspendReason,
)
from .protocol import LATEST, ListQuery, filter_eq, filter_in, filter_not

__all__ = [
    "LATEST",
    "AccessLevel",
    "ApiKeyRegeneration",
    "AuthAPI",
    "CurrentUserAPI",
    "EmailStatus",
    "JwtSession",
    "Language",
    "LastLoginType",
    "Link",
    "ListQuery",
    "LoginStep",
    "LogoutResponse",
    "MetalCloudApiKeyAuth",
    "MetalCloudClient",
    "MetalCloudLoginAuth",
    "MetalCloudMfaRequiredError",
    "PaginationLinks",
    "PaginationMeta",
    "PlanType",
    "Provider",
    "SuspendReasonType",
    "TwoFactorAlreadyDisabledError",
    "TwoFactorAlreadyEnabledError",
    "TwoFactorAuthenticationSecret",
    "TwoFactorCodeRejectedError",
    "User",
    "UserApiKey",
    "UserInfo",
    "UserPaginatedList",
    "UserSuspendReason",
    "UsersAPI",
    "filter_eq",
    "filter_in",
    "filter_not",
    *_public_names,
]
