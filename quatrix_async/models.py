"""Typed request and response models of the Quatrix API 1.0, with the one converter of the API.

Class and wire names follow the published OpenAPI document exactly, including its oddities:
the body of the MFA login step is called :class:`SessionLoginPostResp` although it is a request,
and the three admin MFA calls answer with :class:`ProfileRemoveMfaResp`. Unknown fields are ignored
and unknown enum values are kept as plain strings. Session ids, codes, passwords and tokens are
:class:`~mfa_common.secret.Secret` values, so a model's repr never shows them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

import attrs

from mfa_common.code_providers import MfaChallenge
from mfa_common.converters import LazyConverter, make_converter
from mfa_common.errors import InvalidInputError
from mfa_common.otpauth import parse_otpauth_uri
from mfa_common.qr_decode import QrDecodeError, decode_qr_text, png_bytes, qr_decoder_available
from mfa_common.secret import Secret
from mfa_common.totp import Totp
from mfa_common.wire import json_or_none

if TYPE_CHECKING:
    import cattrs


class AuthType(str, Enum):
    """The second factor: ``"2FA"`` (a TOTP code) or ``"PIN"`` (the user's PIN)."""

    TWO_FA = "2FA"
    PIN = "PIN"


class ResetAuthType(str, Enum):
    """``/user/reset-mfa`` only knows ``"2FA"``."""

    TWO_FA = "2FA"


class ActionStatus(str, Enum):
    """``status`` of the MFA set/remove/reset answers."""

    SUCCESS = "success"


class SuperAdmin(str, Enum):
    """``super_admin`` flag of a user."""

    YES = "Y"
    NO = "N"


class AccountStatus(str, Enum):
    """``account_status`` of a profile: active or suspended."""

    ACTIVE = "A"
    SUSPENDED = "S"


# --------------------------------------------------------------------------- session


@attrs.frozen
class SessionLoginResp:
    """Answer of both login steps: the session id for ``X-Auth-Token``."""

    session_id: Secret[str] | None = None


@attrs.frozen
class SessionLoginPostResp:
    """Body of ``POST /session/login`` (the MFA step). Misnamed ``...Resp`` by the API itself."""

    auth_type: AuthType
    code: Secret[str]


@attrs.frozen
class UnblockCaptchaReq:
    """Body of ``POST /session/unblock-captcha``: the solved CAPTCHA's token."""

    token: Secret[str]


@attrs.frozen
class SessionUnblockCaptchaResp:
    """Whether the CAPTCHA token was accepted."""

    valid: bool | None = None


# --------------------------------------------------------------------------- profile


@attrs.frozen
class ShortUserService:
    """A service enabled for a user."""

    id: str | None = None
    service_key: str | None = None


@attrs.frozen
class ProfileShareTypes:
    """Which kinds of share the user may create (booleans; older servers send ``"Y"``/``"N"``)."""

    restricted_share: bool | None = None
    public_share: bool | None = None
    tracked_share: bool | None = None


@attrs.frozen
class ProfileResp:
    """The logged-in user's profile (``GET /profile``). ``created``/``modified`` are aware UTC
    datetimes (Unix seconds on the wire)."""

    id: str | None = None
    name: str | None = None
    email: str | None = None
    super_admin: str | None = None
    home_id: str | None = None
    operations: int | None = None
    max_file_size: int | None = None
    max_files_per_share: int | None = None
    plan: str | None = None
    is_contact: bool | None = None
    language: str | None = None
    channel_id: str | None = None
    account_id: str | None = None
    storage_id: str | None = None
    created: datetime | None = None
    modified: datetime | None = None
    quota: int | None = None
    status: str | None = None
    uid: int | None = None
    gid: int | None = None
    has_key: bool | None = None
    pgp_enabled: bool | None = None
    message_signature: str | None = None
    outgoing_id: str | None = None
    incoming_id: str | None = None
    services: list[ShortUserService] = attrs.field(factory=list)
    share_types: ProfileShareTypes | None = None
    unique_login: str | None = None
    sftp_login: str | None = None
    auth_methods: list[str] = attrs.field(factory=list)
    account_status: AccountStatus | str | None = None
    sftp_url: str | None = None
    forced_auth: list[str] = attrs.field(factory=list)


@attrs.frozen
class ProfileInfoResp:
    """Licence and storage usage of the user and the account (``GET /profile/info``)."""

    user_used: int | None = None
    user_limit: int | None = None
    acc_used: int | None = None
    acc_limit: int | None = None


@attrs.frozen
class ProfileSetReq:
    """Body of ``POST /profile/set``: only the fields given are sent."""

    name: str | None = None
    email: str | None = None
    language: str | None = None
    message_signature: str | None = None


@attrs.frozen
class ProfileSetResp:
    """The profile fields after ``POST /profile/set``."""

    name: str | None = None
    email: str | None = None
    language: str | None = None
    message_signature: str | None = None


@attrs.frozen
class ProfileSetPasswordReq:
    """Body of ``POST /profile/set-password``: both passwords **base64-encoded** (see
    :func:`quatrix_async.protocol.set_password_body`)."""

    password: Secret[str]
    new_password: Secret[str]


@attrs.frozen
class ProfileSetPasswordResp:
    """Answer of ``POST /profile/set-password``."""

    email: str | None = None


@attrs.frozen
class ProfileSetMfaReq:
    """Body of ``POST /profile/set-mfa``: the factor and a code proving it (a TOTP code of the
    freshly generated secret, or the new PIN)."""

    auth_type: AuthType
    code: Secret[str]


@attrs.frozen
class ProfileSetMfaResp:
    """Sessions closed by enabling MFA.

    The document declares ``session_ids`` as ONE uuid string despite its plural name; real servers
    plausibly send a list (UNCONFIRMED). Both are accepted and always exposed as a tuple.
    """

    session_ids: tuple[Secret[str], ...] = ()


@attrs.frozen
class ProfileRemoveMfaReq:
    """Body of ``POST /profile/remove-mfa``."""

    auth_type: AuthType


@attrs.frozen
class ProfileRemoveMfaResp:
    """``{"status": "success"}``: the answer of every MFA set/reset/remove call."""

    status: ActionStatus | str | None = None


@attrs.frozen
class TwoFactorSecret:
    """A new 2FA secret from ``GET /profile/2fa/generate``.

    CONFIRMED (Maytech's generated clients since API v1.0-123): the answer is
    ``application/octet-stream``, "Image in base64 with QR code", with no JSON and no separate
    secret; the server keeps the pending secret with the session. Which encoding the body uses is
    UNCONFIRMED, so all are read: raw PNG bytes, base64 text of a PNG, or a
    ``data:image/png;base64,`` URI. Older or other servers' JSON forms are read too (a bare
    base64 string, or an object with the image under ``qr_code`` / ``qr`` / ``image`` / ...
    and optionally ``secret`` and ``uri``).

    ``qr_png`` is the PNG (a Secret: the QR code encodes the TOTP secret). ``uri`` and ``secret``
    are filled from the server's answer when it sent them, else from the QR code itself when the
    optional ``qr`` extra is installed; :meth:`otpauth_uri` decodes on demand and says which
    extra to install when it is missing.
    """

    qr_png: Secret[bytes]
    secret: Secret[str] | None = None
    uri: Secret[str] | None = None

    def otpauth_uri(self) -> Secret[str]:
        """The ``otpauth://`` URI: the server's, else decoded from the QR image.

        Raises :class:`~mfa_common.qr_decode.QrDecoderMissingError` (naming the ``qr`` extra)
        when decoding is needed and the decoder is not installed.
        """
        if self.uri is not None:
            return self.uri
        return decode_qr_text(self.qr_png)

    def totp(self) -> Totp:
        """A :class:`~mfa_common.totp.Totp` for the new secret (its parameters from the URI when
        one is known), to compute the code that confirms the enrolment."""
        if self.secret is not None and self.uri is None:
            return Totp(self.secret)
        return Totp.from_uri(self.otpauth_uri())


def with_decoded_qr(result: TwoFactorSecret) -> TwoFactorSecret:
    """``result`` with ``uri`` and ``secret`` read from its QR image when the server sent neither
    and the ``qr`` extra is installed; unchanged otherwise (a QR code that cannot be read, or
    one that is not an ``otpauth://`` URI, leaves them empty: :meth:`TwoFactorSecret.otpauth_uri`
    then raises the reason)."""
    if result.uri is not None or not qr_decoder_available():
        return result
    try:
        uri = decode_qr_text(result.qr_png)
        parsed = parse_otpauth_uri(uri)
    except (QrDecodeError, InvalidInputError):
        return result
    return attrs.evolve(result, uri=uri, secret=result.secret or parsed.secret)


def two_factor_from_body(content: bytes, content_type: str | None) -> TwoFactorSecret:
    """Read a ``/profile/2fa/generate`` answer (any of the forms :class:`TwoFactorSecret` lists).

    ``ValueError`` when the body holds no PNG image.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    stripped = content.lstrip()
    if media.endswith("json") or stripped[:1] in (b"{", b"["):
        data = json_or_none(content)  # never raises: deep nesting and bad bytes are "not JSON"
        if data is not None:
            return converter.structure(data, TwoFactorSecret)
    return TwoFactorSecret(qr_png=Secret(png_bytes(content)))


# --------------------------------------------------------------------------- admin


@attrs.frozen
class UserSetMfaReq:
    """Body of ``POST /user/set-mfa``: enable a factor for users (2FA is then forced)."""

    ids: list[str]
    auth_type: AuthType
    code: Secret[str]


@attrs.frozen
class UserResetMfaReq:
    """Body of ``POST /user/reset-mfa``: wipe the users' 2FA secrets (MFA stays on)."""

    ids: list[str]
    auth_type: ResetAuthType


@attrs.frozen
class UserRemoveMfaReq:
    """Body of ``POST /user/remove-mfa``: disable a factor for users."""

    ids: list[str]
    auth_type: AuthType


@attrs.frozen
class GroupMetadata:
    """Metadata of a user group."""

    is_system: bool | None = None
    translation_id: str | None = None
    visual_order: float | None = None


@attrs.frozen
class Group:
    """A group a user belongs to."""

    id: str | None = None
    name: str | None = None
    metadata: GroupMetadata | None = None


@attrs.frozen
class UserResp:
    """A user as seen by an administrator (``GET /user``, ``GET /user/metadata/{id}``).

    ``created``, ``modified`` and ``last_login`` are aware UTC datetimes (Unix seconds on the wire).
    """

    id: str | None = None
    parent_id: str | None = None
    home_id: str | None = None
    home_name: str | None = None
    super_admin: SuperAdmin | str | None = None
    name: str | None = None
    email: str | None = None
    status: str | None = None
    quota: int | None = None
    created: datetime | None = None
    modified: datetime | None = None
    groups: list[Group] = attrs.field(factory=list)
    user_operations: int | None = None
    effective_operations: int | None = None
    home_operations: int | None = None
    language: str | None = None
    storage_id: str | None = None
    has_key: bool | None = None
    services: list[ShortUserService] = attrs.field(factory=list)
    unique_login: str | None = None
    sftp_login: str | None = None
    custom_sftp_home: bool | None = None
    sftp_home: str | None = None
    readonly: bool | None = None
    auth_methods: list[str] = attrs.field(factory=list)
    last_login: datetime | None = None
    storage_used: int | None = None
    forced_auth: list[str] = attrs.field(factory=list)


@attrs.frozen
class ErrorModel:
    """The error body of every Quatrix error: ``code``, ``msg`` and optional ``details``."""

    code: int
    msg: str
    details: dict[str, Any] = attrs.field(factory=dict)


# --------------------------------------------------------------------------- the converter


def _structure_flag(value: Any, _: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("y", "yes", "true", "1"):
            return True
        if lowered in ("n", "no", "false", "0", ""):
            return False
    if isinstance(value, (int, float)):
        return bool(value)
    raise ValueError("expected a boolean or Y/N")


def _structure_share_types(value: Any, _: Any) -> ProfileShareTypes:
    if not isinstance(value, dict):
        raise ValueError("share_types must be an object")
    return ProfileShareTypes(
        restricted_share=_structure_flag(value.get("restricted_share"), None),
        public_share=_structure_flag(value.get("public_share"), None),
        tracked_share=_structure_flag(value.get("tracked_share"), None),
    )


def _structure_session_ids(value: Any, _: Any) -> ProfileSetMfaResp:
    if not isinstance(value, dict):
        raise ValueError("expected an object")
    raw = value.get("session_ids")
    if raw is None or raw == "":
        ids: tuple[Secret[str], ...] = ()
    elif isinstance(raw, str):
        ids = tuple(Secret(part.strip()) for part in raw.split(",") if part.strip())
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        ids = tuple(Secret(item) for item in raw)
    else:
        raise ValueError("session_ids must be a string or a list of strings")
    return ProfileSetMfaResp(session_ids=ids)


_QR_KEYS = ("qr_code", "qr", "image", "qrcode", "qr_image", "img")


def _decode_png(value: str) -> bytes:
    try:
        return png_bytes(value)
    except QrDecodeError as exc:
        raise ValueError("the QR image is not a base64 PNG") from exc


def _structure_two_factor(value: Any, _: Any) -> TwoFactorSecret:
    if isinstance(value, str):
        return TwoFactorSecret(qr_png=Secret(_decode_png(value)))
    if isinstance(value, dict):
        image = next((value[k] for k in _QR_KEYS if isinstance(value.get(k), str)), None)
        if image is None:
            raise ValueError("no QR image in the answer")
        secret = value.get("secret")
        uri = value.get("uri") or value.get("otpauth_uri") or value.get("url")
        return TwoFactorSecret(
            qr_png=Secret(_decode_png(image)),
            secret=Secret(secret) if isinstance(secret, str) and secret else None,
            uri=Secret(uri) if isinstance(uri, str) and uri else None,
        )
    raise ValueError("expected a base64 string or an object")


#: Larger "seconds" are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MILLISECONDS_FROM = 1e11


def _structure_timestamp(value: Any, _: Any) -> datetime:
    """A wire timestamp as an aware UTC datetime: Unix seconds (a number or a numeric string;
    milliseconds are recognised by size) or an ISO 8601 string (taken as UTC without an offset).
    The API documents seconds; the other shapes are accepted because servers vary."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("expected a Unix timestamp or an ISO 8601 date") from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected a Unix timestamp")
    seconds = float(value) / 1000 if abs(value) >= _MILLISECONDS_FROM else float(value)
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError("timestamp out of range") from None


#: What the answer of the password step asks for next (see :class:`LoginResult`).
LoginStepKind = Literal["logged_in", "mfa", "captcha", "unknown_mfa", "error"]


@attrs.frozen
class LoginResult:
    """The password step of a login (``GET /session/login``): what its answer asks for next.

    ``kind``: ``"logged_in"`` (200), ``"mfa"`` (207 with 71 / 73; ``challenge`` says which),
    ``"captcha"`` (207 with 61), ``"unknown_mfa"`` (207 with another or no code), ``"error"``
    (any other status: map the response to an error). ``session_id`` is the (partial) session.
    """

    kind: LoginStepKind
    status_code: int
    session_id: Secret[str] | None = None
    mfa_code: int | None = None
    challenge: MfaChallenge | None = None

    @property
    def mfa_required(self) -> bool:
        """Whether a second factor must follow (``client.session.login_mfa``)."""
        return self.kind == "mfa"


def _make() -> cattrs.Converter:
    conv = make_converter("snake")
    conv.register_structure_hook(ProfileShareTypes, _structure_share_types)
    conv.register_structure_hook(ProfileSetMfaResp, _structure_session_ids)
    conv.register_unstructure_hook(
        ProfileSetMfaResp, lambda r: {"session_ids": [s.reveal() for s in r.session_ids]}
    )
    conv.register_structure_hook(TwoFactorSecret, _structure_two_factor)
    conv.register_structure_hook(datetime, _structure_timestamp)
    conv.register_unstructure_hook(datetime, lambda d: d.timestamp())
    return conv


#: The converter of the Quatrix API: snake_case wire names, tolerant of unknown fields/enums.
converter = LazyConverter(_make)
