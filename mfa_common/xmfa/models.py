"""Wire models of the X-MFA-Token API (ShellHub ``MfaApi``), with their one converter.

Field names are snake_case on the wire, as in the OpenAPI document. Every credential a model
holds (the JWT, the TOTP secret and its ``otpauth://`` link, recovery codes, one-time and
e-mail codes) is a :class:`~mfa_common.secret.Secret`, so a ``repr`` or a log line never shows
it. Unknown response fields are ignored and unknown enum values kept as raw strings, because
servers of different generations add fields (``auth_methods``) and roles.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import attrs

from ..converters import LazyConverter, make_converter
from ..secret import Secret

__all__ = [
    "ApiError",
    "LoginRequest",
    "LoginResult",
    "MfaAuth",
    "MfaDisable",
    "MfaEnable",
    "MfaGenerate",
    "MfaRecover",
    "MfaReset",
    "Origin",
    "RecoverResult",
    "RequestResetMFA",
    "RequestResetMFAResponse",
    "Role",
    "UserAuth",
    "converter",
]


class Origin(str, Enum):
    """How the user registered (``local`` form or ``saml``)."""

    LOCAL = "local"
    SAML = "saml"


class Role(str, Enum):
    """The user's role in the preferred namespace. Servers may send ``""`` (no namespace) or a
    role this SDK does not know: such values are kept as plain strings."""

    ADMINISTRATOR = "administrator"
    OPERATOR = "operator"
    OBSERVER = "observer"
    OWNER = "owner"


@attrs.frozen
class UserAuth:
    """A logged-in user: the bearer JWT (``token``) and who it belongs to.

    Returned by login, ``authMFA``, ``mfaRecover``, ``resetMFA`` and ``GET /api/auth/user``.
    ``auth_methods`` is not in the OpenAPI document but current servers send it.
    """

    token: Secret[str]
    id: str
    user: str
    origin: Origin | str | None = None
    name: str = ""
    email: str = ""
    recovery_email: str = ""
    tenant: str = ""
    role: Role | str | None = None
    mfa: bool = False
    admin: bool = False
    max_namespaces: int = -1
    auth_methods: tuple[str, ...] = ()


@attrs.frozen
class MfaAuth:
    """Body of ``POST /api/user/mfa/auth``: the ``X-MFA-Token`` value and a TOTP code."""

    token: Secret[str]
    code: Secret[str]


@attrs.frozen
class MfaGenerate:
    """Credentials from ``GET /api/user/mfa/generate``: the ``otpauth://`` link, the base32
    secret and the recovery codes. Show the link (as a QR code) or the secret to the user, then
    confirm with :class:`MfaEnable`."""

    link: Secret[str]
    secret: Secret[str]
    recovery_codes: tuple[Secret[str], ...]


@attrs.frozen
class MfaEnable:
    """Body of ``PUT /api/user/mfa/enable``: a current code plus the secret and codes echoed
    back from :class:`MfaGenerate`."""

    code: Secret[str]
    secret: Secret[str]
    recovery_codes: tuple[Secret[str], ...]


@attrs.frozen
class MfaDisable:
    """Body of ``PUT /api/user/mfa/disable``: one of ``code``, ``recovery_code`` or both e-mail
    codes; all absent (``{}``) inside the 10-minute recovery window."""

    code: Secret[str] | None = None
    recovery_code: Secret[str] | None = None
    main_email_code: Secret[str] | None = None
    recovery_email_code: Secret[str] | None = None


@attrs.frozen
class MfaRecover:
    """Body of ``POST /api/user/mfa/recover``: login identifier (username or e-mail) and a
    recovery code."""

    identifier: str
    recovery_code: Secret[str]


@attrs.frozen
class RequestResetMFA:
    """Body of ``POST /api/user/mfa/reset``: the login identifier."""

    identifier: str


@attrs.frozen
class RequestResetMFAResponse:
    """Answer of ``POST /api/user/mfa/reset`` on current servers (older ones send no body)."""

    token: Secret[str]


@attrs.frozen
class MfaReset:
    """Body of ``PUT /api/user/mfa/reset/{user-id}``: the two 5-character e-mail codes."""

    main_email_code: Secret[str]
    recovery_email_code: Secret[str]


@attrs.frozen
class LoginRequest:
    """Body of ``POST /api/login``. ``username`` accepts a username or an e-mail address."""

    username: str
    password: Secret[str]


@attrs.frozen
class ApiError:
    """The error body ``{message, fields}``; ``fields`` maps a request field to its reason."""

    message: str = ""
    fields: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class LoginResult:
    """What a password login gave: either ``user`` (no MFA) or ``mfa_token`` (MFA required).

    The MFA token is valid for 30 minutes on ShellHub and is spent by the first successful
    ``authMFA``; ``mfa_token_expires_at`` is the client's estimate of that deadline.
    """

    user: UserAuth | None = None
    mfa_token: Secret[str] | None = None
    mfa_token_expires_at: datetime | None = None

    @property
    def mfa_required(self) -> bool:
        """True when the server asked for a second factor."""
        return self.mfa_token is not None


@attrs.frozen
class RecoverResult:
    """A login by recovery code: the user (with JWT) and the end of the recovery window,
    from ``X-Expires-At``, during which MFA can be disabled without another code."""

    user: UserAuth
    expires_at: datetime | None = None


#: The converter of this API (snake_case wire names, Secrets revealed only when unstructured).
converter = LazyConverter(lambda: make_converter("snake"))
