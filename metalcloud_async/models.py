"""Request and response models of the MetalCloud v2 API (camelCase on the wire).

Every model is a frozen attrs class read and written by the one :data:`converter` of this API.
Real servers send fields the spec does not list and values outside its enums (``"provider":
"local"``, ``"lastLoginType": "password"``), and omit fields the spec marks required, so almost
every response field has a default, unknown fields are ignored and unknown enum values are kept
as plain strings. Credentials (passwords, API keys, TOTP secrets and codes, the QR code that
encodes a secret) are :class:`~mfa_common.secret.Secret` values.
"""

from __future__ import annotations

import base64
import binascii
from enum import Enum
from typing import Any

import attrs

from mfa_common.converters import make_converter
from mfa_common.errors import InvalidInputError
from mfa_common.secret import Secret
from mfa_common.totp import Totp

__all__ = [
    "AccessLevel",
    "ApiKeyRegeneration",
    "AuthenticationProperties",
    "AuthenticationRequest",
    "ChangeUserEmail",
    "EmailStatus",
    "Language",
    "LastLoginType",
    "Link",
    "LoginResult",
    "LogoutResponse",
    "PaginationLinks",
    "PaginationMeta",
    "PasswordReset",
    "PlanType",
    "Provider",
    "SuspendReasonType",
    "TwoFactorAuthenticationSecret",
    "TwoFactorAuthenticationToken",
    "User",
    "UserApiKey",
    "UserInfo",
    "UserPaginatedList",
    "UserSuspend",
    "UserSuspendReason",
    "UserUpdatePassword",
    "converter",
    "decode_data_uri",
]


# --------------------------------------------------------------------------- enums


class EmailStatus(str, Enum):
    NOT_VERIFIED = "not_verified"
    VERIFIED = "verified"


class Language(str, Enum):
    EN = "en"
    RO = "ro"


class LastLoginType(str, Enum):
    MD5 = "md5"
    SMTP = "smtp"


class Provider(str, Enum):
    """Authentication provider of a user (``saml`` users cannot log in with a password here)."""

    MYSQL = "mysql"
    LDAP = "ldap"
    SAML = "saml"


class PlanType(str, Enum):
    VANILLA = "vanilla"
    STARTER = "starter"
    STARTER_REDUNDANT = "starter_redundant"
    CUSTOM = "custom"


class SuspendReasonType(str, Enum):
    UNPAID = "unpaid"
    CUSTOM = "custom"


class AccessLevel(str, Enum):
    """Access levels seen in the official CLI (the server accepts others: the field is a string)."""

    ROOT = "root"
    ADMIN = "admin"
    FULL_ADMIN = "full_admin"
    USER = "user"


# --------------------------------------------------------------------------- helpers


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """``data:<mime>;base64,<payload>`` -> (mime, bytes). Raises InvalidInputError otherwise."""
    if not uri.startswith("data:") or "," not in uri:
        raise InvalidInputError("not a data: URI")
    header, payload = uri[5:].split(",", 1)
    parts = header.split(";")
    mime = parts[0] or "text/plain"
    if "base64" not in parts[1:]:
        raise InvalidInputError("only base64 data: URIs are supported")
    try:
        return mime, base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError("the data: URI payload is not valid base64") from exc


# --------------------------------------------------------------------------- response models


@attrs.frozen
class Link:
    """A reference link ``{rel, href}``."""

    rel: str = ""
    href: str = ""


@attrs.frozen
class User:
    """A MetalCloud user (``GET /api/v2/user``, ``/api/v2/users/{id}``, login, most user actions).

    ``revision`` is the optimistic-lock revision that writes send back as ``If-Match``;
    ``etag`` is the ``ETag`` response header when the server sent one (not a wire field).
    Nested objects (permissions, limits, config, meta) are kept as plain dicts.
    """

    id: int
    revision: int = 0
    display_name: str = ""
    email: str = ""
    email_status: EmailStatus | None = None
    language: Language | None = None
    brand: str | None = None
    is_brand_manager: bool = False
    last_login_timestamp: str | None = None
    last_login_type: LastLoginType | None = None
    is_blocked: bool = False
    password_change_required: bool = False
    access_level: str | None = None
    is_billable: bool = False
    is_testing_mode: bool = False
    infrastructure_id_default: int | None = None
    authenticator_enabled: bool = False
    authenticator_must_change: bool = False
    authenticator_created_timestamp: str | None = None
    promotion_tags: list[str] | None = None
    experimental_tags: list[str] | None = None
    external_ids: dict[str, Any] | None = None
    exclude_from_reports: bool = False
    is_test_account: bool = False
    is_archived: bool = False
    is_datastore_publisher: bool = False
    is_suspended: bool = False
    account_id: int | None = None
    provider: Provider | None = None
    password_last_changed_timestamp: str | None = None
    franchise: str | None = None
    created_timestamp: str | None = None
    plan_type: PlanType | None = None
    permissions: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    disabled_limits: dict[str, Any] | None = None
    parent_delegates: list[str] | None = None
    child_delegates: list[str] | None = None
    config: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    links: list[Link] | None = None
    etag: str | None = None


@attrs.frozen
class UserInfo:
    """One item of the paginated user list."""

    id: int
    revision: int = 0
    display_name: str = ""
    email: str = ""
    email_status: EmailStatus | None = None
    language: Language | None = None
    last_login_timestamp: str | None = None
    access_level: str | None = None
    is_archived: bool = False
    created_timestamp: str | None = None
    account_id: int | None = None
    links: list[Link] | None = None


@attrs.frozen
class PaginationMeta:
    """``meta`` of a paginated list (nestjs-paginate)."""

    items_per_page: int = 0
    total_items: int | None = None
    current_page: int | None = None
    total_pages: int | None = None
    sort_by: list[list[str]] | None = None
    search_by: list[str] | None = None
    search: str | None = None
    select: list[str] | None = None
    filter: dict[str, Any] | None = None
    cursor: str | None = None


@attrs.frozen
class PaginationLinks:
    """``links`` of a paginated list: absolute or relative URIs of neighbouring pages."""

    first: str | None = None
    previous: str | None = None
    current: str | None = None
    next: str | None = None
    last: str | None = None


@attrs.frozen
class UserPaginatedList:
    """One page of ``GET /api/v2/users``: ``{data, meta, links}``."""

    data: list[UserInfo] = attrs.Factory(list)
    meta: PaginationMeta = attrs.Factory(PaginationMeta)
    links: PaginationLinks | None = None


@attrs.frozen
class TwoFactorAuthenticationSecret:
    """A freshly generated 2FA secret: ``secret2FA`` (base32) and ``qrCode`` (PNG data URI).

    Both are secrets (the QR code encodes the shared secret). :meth:`totp` gives a
    :class:`~mfa_common.totp.Totp` ready for :class:`~mfa_common.code_providers.TotpCodeProvider`;
    :attr:`qr_png` the decoded PNG image.
    """

    __wire_names__ = {"secret_2fa": "secret2FA"}

    qr_code: Secret[str]
    secret_2fa: Secret[str]

    @property
    def qr_png(self) -> Secret[bytes]:
        """The QR code image (PNG bytes) decoded from the data URI."""
        _, raw = decode_data_uri(self.qr_code.reveal())
        return Secret(raw)

    @property
    def qr_mime_type(self) -> str:
        """The media type of the QR code data URI (``image/png`` on the real server)."""
        return decode_data_uri(self.qr_code.reveal())[0]

    def totp(self, *, account: str | None = None, issuer: str | None = "MetalCloud") -> Totp:
        """The secret as a TOTP generator (RFC 6238 defaults: SHA1, 6 digits, 30 s; the server's
        parameters are UNCONFIRMED, these are what authenticator apps assume)."""
        return Totp(self.secret_2fa, account=account, issuer=issuer)


@attrs.frozen
class UserApiKey:
    """``{apiKey}``: ``"<userId>:<63 random alphanumerics>"``."""

    api_key: Secret[str]

    @property
    def user_id(self) -> int | None:
        """The user id prefix of the key, when it has one."""
        prefix = self.api_key.reveal().split(":", 1)[0]
        return int(prefix) if prefix.isdigit() else None


@attrs.frozen
class UserSuspendReason:
    """The suspension record returned by ``suspend``."""

    id: int | None = None
    user_id: int | None = None
    type: SuspendReasonType | None = None
    created_timestamp: str | None = None
    end_timestamp: str | None = None
    public_comment: str | None = None
    private_comment: str | None = None


@attrs.frozen
class LogoutResponse:
    """The logout answer (named ``LogoutRequest`` in the spec): an optional redirect URL."""

    redirect_url: str | None = None


@attrs.frozen
class ApiKeyRegeneration:
    """Result of regenerating the caller's API key: the updated user and the new key."""

    user: User
    api_key: Secret[str]
    switched: bool = False


@attrs.frozen
class LoginResult:
    """Result of an explicit login: the user, and whether a second factor was completed."""

    user: User
    two_factor: bool = False


# --------------------------------------------------------------------------- request models


@attrs.frozen
class AuthenticationProperties:
    """``properties`` of a login request (the MySQL and LDAP variants have the same shape)."""

    email: str
    password: Secret[str]


@attrs.frozen
class AuthenticationRequest:
    """``POST /api/v2/login`` body: ``{provider, properties: {email, password}}``."""

    provider: str
    properties: AuthenticationProperties


@attrs.frozen
class TwoFactorAuthenticationToken:
    """``{token}``: a TOTP code, for ``login-2fa`` and ``2fa-enable``."""

    token: Secret[str]


@attrs.frozen
class UserUpdatePassword:
    """``{newPassword, oldPassword?}``."""

    new_password: Secret[str]
    old_password: Secret[str] | None = None


@attrs.frozen
class ChangeUserEmail:
    """``{email, redirectUrl?}``."""

    email: str
    redirect_url: str | None = None


@attrs.frozen
class PasswordReset:
    """``{email, redirectUrl?}``."""

    email: str
    redirect_url: str | None = None


@attrs.frozen
class UserSuspend:
    """``{suspendReason: unpaid|custom, suspendReasonPublicComment, suspendReasonPrivateComment?}``."""

    suspend_reason: str
    suspend_reason_public_comment: str
    suspend_reason_private_comment: str | None = None


# --------------------------------------------------------------------------- the converter


converter = make_converter("camel")


def _structure_int(value: Any, _: Any) -> int:
    # IDs and revisions are JSON numbers (the Go SDK even uses float32); "7" and 7.0 are accepted.
    if isinstance(value, bool):
        raise TypeError("a boolean is not an id")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not an integral number")
        return int(value)
    return int(value)


converter.register_structure_hook(int, _structure_int)


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise TypeError("not a boolean")


converter.register_structure_hook(bool, _structure_bool)
