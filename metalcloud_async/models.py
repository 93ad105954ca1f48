"""Request and response models of the MetalCloud v2 API (camelCase on the wire).

Every model is a frozen attrs class read and written by the one :data:`converter` of this API.
Real servers send fields the spec does not list and values outside its enums (``"provider":
"local"``, ``"lastLoginType": "password"``), and omit fields the spec marks required, so almost
every response field has a default, unknown fields are ignored and unknown enum values are kept
as plain strings (such a field is typed ``E | str``; :class:`UpdateUser` takes the same types, so a
value read from a configuration can be sent back unchanged). Credentials (passwords, API keys,
TOTP secrets and codes, the QR code that encodes a secret) are :class:`~mfa_common.secret.Secret`
values.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

import attrs

from mfa_common.converters import LazyConverter, make_converter
from mfa_common.errors import InvalidInputError
from mfa_common.secret import Secret
from mfa_common.totp import Totp

if TYPE_CHECKING:
    import cattrs


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


def _config_repr(config: Any) -> str:
    return "None" if config is None else f"UserConfiguration(revision={config.revision}, ...)"


Number = int | float
"""A JSON number of the spec (``type: number``): an ``int`` when integral, else a ``float``."""


class SshKeyStatus(str, Enum):
    ACTIVE = "active"
    DELETED = "deleted"


class ExperimentalTag(str, Enum):
    STORAGE_POOLS = "storage_pools"
    VM_POOLS = "vm_pools"
    SERVERS = "servers"
    VOLUME_TEMPLATE = "volume_template"


@attrs.frozen
class GenericGUISettings:
    """``guiSettings`` of a user's meta (where the web console keeps its layout)."""

    __wire_names__ = {"random_instance_id": "randomInstanceID"}

    row_index: Number | None = None
    column_index: Number | None = None
    show_widget_children: bool | None = None
    random_instance_id: str | None = None
    user_agent: str | None = None


@attrs.frozen
class UserMeta:
    """``PATCH``/answer of ``/api/v2/users/{id}/meta``: free-form console settings."""

    gui_settings: GenericGUISettings | None = None


def _first(*names: str) -> Any:
    """An attrs field transformer putting ``names`` first (repr and wire order), the rest after
    in their declared order: a class that inherits its fields still reads identity first."""

    def transform(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
        return sorted(fields, key=lambda f: names.index(f.name) if f.name in names else len(names))

    return transform


@attrs.frozen(kw_only=True)
class _UserSettings:
    """The settings a user and its configuration both carry (the spec lists them in both
    schemas): declared once, inherited by :class:`UserConfiguration` and :class:`User`."""

    display_name: str = ""
    email_status: EmailStatus | str | None = None
    language: Language | str | None = None
    brand: str | None = None
    is_brand_manager: bool = False
    last_login_timestamp: datetime | None = None
    last_login_type: LastLoginType | str | None = None
    is_blocked: bool = False
    password_change_required: bool = False
    access_level: str | None = None
    is_billable: bool = False
    is_testing_mode: bool = False
    infrastructure_id_default: int | None = None
    authenticator_must_change: bool = False
    authenticator_created_timestamp: datetime | None = None
    promotion_tags: list[str] | None = None
    experimental_tags: list[str] | None = None
    external_ids: dict[str, Any] | None = None
    exclude_from_reports: bool = False
    is_test_account: bool = False
    is_archived: bool = False
    is_datastore_publisher: bool = False
    account_id: int | None = None
    provider: Provider | str | None = None
    password_last_changed_timestamp: datetime | None = None


@attrs.frozen(kw_only=True, field_transformer=_first("revision"))
class UserConfiguration(_UserSettings):
    """``GET``/``PATCH /api/v2/users/{id}/config``: the editable settings of a user.

    ``revision`` is the user's revision (the server keeps a user and its configuration in one
    row): a configuration update sends it as ``If-Match``. ``authenticator_must_change`` forces
    the user to enrol a new authenticator at the next login (the only way an administrator can
    act on a user's 2FA).
    """

    revision: int = 0


@attrs.frozen
class AdminPasswordRevealPermissions:
    """Which kinds of resource passwords an administrator may reveal (snake_case on the wire)."""

    __wire_names__ = {
        "chassis_rack": "chassis_rack",
        "storage_pool": "storage_pool",
    }

    cluster: bool | None = None
    instance: bool | None = None
    drive: bool | None = None
    hdfs: bool | None = None
    datacenter: bool | None = None
    chassis_rack: bool | None = None
    container: bool | None = None
    storage_pool: bool | None = None
    server: bool | None = None
    switch: bool | None = None
    workflow: bool | None = None


@attrs.frozen
class SpecialPermissions:
    """Special permissions (snake_case on the wire)."""

    __wire_names__ = {"create_verified_user": "create_verified_user"}

    create_verified_user: bool | None = None


@attrs.frozen
class UserPermissions:
    """``GET /api/v2/users/{id}/permissions`` (and the answer of a change)."""

    role_permissions: list[str] = attrs.Factory(list)
    admin_password_reveal_permissions: AdminPasswordRevealPermissions | None = None
    special_permissions: SpecialPermissions | None = None


@attrs.frozen(repr=False)
class UserLimits:
    """Resource limits of a user (``GET /api/v2/users/{id}/limits``, ``default-limits``, and
    ``PATCH .../actions/change-limits``, which sends only the fields that are set). The repr
    lists only the fields that are set."""

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{a.name}={getattr(self, a.name)!r}"
            for a in attrs.fields(type(self))
            if getattr(self, a.name) is not None
        )
        return f"UserLimits({shown})"

    container_array_containers_max_count: Number | None = None
    container_array_containers_min_count: Number | None = None
    container_array_drive_arrays_max_count: Number | None = None
    container_array_drive_arrays_min_count: Number | None = None
    container_array_secrets_max_count: Number | None = None
    container_platform_container_array_max_count: Number | None = None
    drive_array_drives_max_count: Number | None = None
    drive_array_drives_min_count: Number | None = None
    drive_max_size_mbytes: Number | None = None
    drive_min_size_mbytes: Number | None = None
    infrastructure_active_max_count: Number | None = None
    infrastructure_cluster_max_count: Number | None = None
    infrastructure_cluster_mysql_allowed: bool | None = None
    infrastructure_container_cluster_kafka_allowed: bool | None = None
    infrastructure_container_cluster_max_count: Number | None = None
    infrastructure_container_cluster_postgresql_allowed: bool | None = None
    infrastructure_container_cluster_spark_array_allowed: bool | None = None
    infrastructure_container_cluster_sparksql_allowed: bool | None = None
    infrastructure_container_cluster_streamsets_allowed: bool | None = None
    infrastructure_container_cluster_zookeeper_allowed: bool | None = None
    infrastructure_container_cluster_zoomdata_allowed: bool | None = None
    infrastructure_container_platform_max_count: Number | None = None
    infrastructure_data_lake_enabled: bool | None = None
    infrastructure_data_lake_max_count: Number | None = None
    infrastructure_deleted_max_count: Number | None = None
    infrastructure_drive_array_max_count: Number | None = None
    infrastructure_inactive_max_count: Number | None = None
    infrastructure_instance_array_max_count: Number | None = None
    infrastructure_lan_max_count: Number | None = None
    infrastructure_san_max_count: Number | None = None
    infrastructure_shared_drive_max_count: Number | None = None
    infrastructure_file_share_max_count: Number | None = None
    infrastructure_bucket_max_count: Number | None = None
    infrastructure_volume_template_experimental_allowed: bool | None = None
    infrastructure_wan_max_count: Number | None = None
    instance_array_instances_max_count: Number | None = None
    instance_array_instances_min_count: Number | None = None
    infrastructure_vm_instance_group_max_count: Number | None = None
    vm_instance_group_vm_instances_max_count: Number | None = None
    vm_instance_max_disk_size_mbytes: Number | None = None
    owner_is_billable: bool | None = None
    server_type_reservation_max_count: Number | None = None
    server_type_reservation_max_quantity: Number | None = None
    shared_drive_max_size_mbytes: Number | None = None
    shared_drive_min_size_mbytes: Number | None = None
    file_share_max_size_gb: Number | None = None
    file_share_min_size_gb: Number | None = None
    bucket_max_size_gb: Number | None = None
    bucket_min_size_gb: Number | None = None
    allow_vlan_overrides: bool | None = None
    allow_network_profiles: bool | None = None
    show_operating_system_images_tab: bool | None = None
    show_template_assets_view: bool | None = None
    storage_types: list[str] | None = None
    threshold_max_count: Number | None = None
    user_resource_iscsi_storage_space_max_gbytes: Number | None = None
    user_resource_servers_max_count: Number | None = None
    user_resource_server_type_name_to_max_count: dict[str, Any] | None = None
    user_ssh_keys_count_max: Number | None = None
    wan_subnet_ipv4_max_count: Number | None = None
    wan_subnet_ipv6_max_count: Number | None = None
    wan_subnet_prefix_size_to_max_count: dict[str, Any] | None = None
    show_legacy_pages: bool | None = None
    show_experimental_pages: bool | None = None
    show_diagram_apps_global: bool | None = None
    show_diagram_app_cluster_type_cloudera: bool | None = None
    show_diagram_app_cluster_type_couchbase: bool | None = None
    show_diagram_app_cluster_type_datameer: bool | None = None
    show_diagram_app_cluster_type_datastax: bool | None = None
    show_diagram_app_cluster_type_elasticsearch: bool | None = None
    show_diagram_app_cluster_type_exasol: bool | None = None
    show_diagram_app_cluster_type_hortonworks: bool | None = None
    show_diagram_app_cluster_type_kubernetes: bool | None = None
    show_diagram_app_cluster_type_mapr: bool | None = None
    show_diagram_app_cluster_type_mesos: bool | None = None
    show_diagram_app_cluster_type_mysql_percona: bool | None = None
    show_diagram_app_cluster_type_splunk: bool | None = None
    show_diagram_app_cluster_type_vmware_vsphere: bool | None = None
    show_diagram_app_cluster_type_vmware_vcf: bool | None = None
    show_diagram_app_cluster_type_kubernetes_eksa: bool | None = None
    show_diagram_vm_instance_groups: bool | None = None
    show_eli_chat_bot: bool | None = None
    enable_custom_raid_configuration: bool | None = None
    enable_custom_subnets: bool | None = None
    show_stack_trace: bool | None = None


@attrs.frozen
class UserLimitsDisabled:
    """Limits currently disabled for lack of infrastructure (field name -> reason)."""

    infrastructure_drive_array_max_count: str | None = None
    infrastructure_shared_drive_max_count: str | None = None
    infrastructure_san_max_count: str | None = None


@attrs.frozen
class UserSshKey:
    """One SSH key of a user (``UserSSHKeys`` in the spec)."""

    id: int
    user_id: int | None = None
    ssh_key: str = ""
    created_timestamp: datetime | None = None
    status: SshKeyStatus | str | None = None


@attrs.frozen
class UserSshKeyList:
    """``{data: [UserSSHKeys], links}``."""

    data: list[UserSshKey] = attrs.Factory(list)
    links: list[Link] | None = None


@attrs.frozen
class AuthenticationUserProvider:
    """``GET /api/v2/authentication-provider?email=``: how that address logs in (``saml``
    users go to ``sso_entry_point`` instead of posting a password)."""

    provider: Provider | str | None = None
    sso_entry_point: str | None = None


@attrs.frozen(kw_only=True, field_transformer=_first("id", "revision", "display_name", "email"))
class User(_UserSettings):
    """A MetalCloud user (``GET /api/v2/user``, ``/api/v2/users/{id}``, login, most user actions).

    ``revision`` is the optimistic-lock revision that writes send back as ``If-Match``;
    ``etag`` is the ``ETag`` response header when the server sent one (not a wire field).
    ``config`` carries the same ``revision`` (a user and its configuration are one row on the
    server). ``password_change_required`` tells that the password expired or was reset:
    the user must change it (the server keeps serving the session meanwhile). Timestamps are
    aware UTC datetimes.
    """

    id: int
    revision: int = 0
    email: str = ""
    authenticator_enabled: bool = False
    is_suspended: bool = False
    franchise: str | None = None
    created_timestamp: datetime | None = None
    plan_type: PlanType | str | None = None
    permissions: UserPermissions | None = None
    limits: UserLimits | None = None
    disabled_limits: UserLimitsDisabled | None = None
    parent_delegates: list[str] | None = None
    child_delegates: list[str] | None = None
    # The configuration repeats most fields of the user itself: its repr shows only its revision.
    config: UserConfiguration | None = attrs.field(default=None, repr=_config_repr)
    meta: UserMeta | None = None
    links: list[Link] | None = None
    etag: str | None = None


@attrs.frozen
class UserInfo:
    """One item of the paginated user list."""

    id: int
    revision: int = 0
    display_name: str = ""
    email: str = ""
    email_status: EmailStatus | str | None = None
    language: Language | str | None = None
    last_login_timestamp: datetime | None = None
    access_level: str | None = None
    is_archived: bool = False
    created_timestamp: datetime | None = None
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
        return int(prefix) if prefix.isascii() and prefix.isdigit() else None


@attrs.frozen
class UserSuspendReason:
    """The suspension record returned by ``suspend``."""

    id: int | None = None
    user_id: int | None = None
    type: SuspendReasonType | str | None = None
    created_timestamp: datetime | None = None
    end_timestamp: datetime | None = None
    public_comment: str | None = None
    private_comment: str | None = None


@attrs.frozen
class UserSuspendReasonList:
    """``GET /api/v2/users/{id}/suspend-reasons``: ``{data: [UserSuspendReason], links}``."""

    data: list[UserSuspendReason] = attrs.Factory(list)
    links: list[Link] | None = None


@attrs.frozen
class UserList:
    """A plain user list (the parent or child delegates of a user): ``{data: [UserInfo], links}``."""

    data: list[UserInfo] = attrs.Factory(list)
    links: list[Link] | None = None


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


@attrs.frozen
class CreateUser:
    """``POST /api/v2/users`` body. Without ``password`` the server mails the user a link to
    set one (UNCONFIRMED; the fake does so)."""

    display_name: str
    email: str
    access_level: str
    password: Secret[str] | None = None
    email_verified: bool | None = None
    create_with_account: bool | None = None
    account_id: int | None = None


@attrs.frozen
class UpdateUser:
    """``PATCH /api/v2/users/{id}/config`` body: only the fields that are set are sent.
    It cannot switch a user's 2FA off; ``authenticator_must_change=True`` forces re-enrolment."""

    display_name: str | None = None
    email_status: EmailStatus | str | None = None
    language: Language | str | None = None
    brand: str | None = None
    is_brand_manager: bool | None = None
    last_login_timestamp: datetime | None = None
    last_login_type: LastLoginType | str | None = None
    is_blocked: bool | None = None
    password_change_required: bool | None = None
    access_level: str | None = None
    is_billable: bool | None = None
    is_testing_mode: bool | None = None
    infrastructure_id_default: int | None = None
    authenticator_must_change: bool | None = None
    authenticator_created_timestamp: datetime | None = None
    promotion_tags: list[str] | None = None
    experimental_tags: list[str] | None = None
    external_ids: dict[str, Any] | None = None
    exclude_from_reports: bool | None = None
    is_test_account: bool | None = None
    is_archived: bool | None = None
    is_datastore_publisher: bool | None = None
    account_id: int | None = None
    provider: Provider | str | None = None
    password_last_changed_timestamp: datetime | None = None


@attrs.frozen
class ChangeUserAccount:
    """``{newAccountId}``."""

    new_account_id: int


@attrs.frozen
class ResendUserVerificationEmail:
    """``{redirectUrl?}``."""

    redirect_url: str | None = None


@attrs.frozen
class CreateUserSshKey:
    """``{sshKey}``: an OpenSSH public key line."""

    ssh_key: str


@attrs.frozen
class UpdateUserPermissions:
    """``POST /api/v2/users/{id}/actions/change-resource-permissions`` body."""

    admin_password_reveal_permissions: AdminPasswordRevealPermissions | None = None
    special_permissions: SpecialPermissions | None = None


# --------------------------------------------------------------------------- the converter


def _structure_int(value: Any, _: Any) -> int:
    # IDs and revisions are JSON numbers (the Go SDK even uses float32); "7" and 7.0 are accepted.
    if isinstance(value, bool):
        raise TypeError("a boolean is not an id")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not an integral number")
        return int(value)
    return int(value)


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise TypeError("not a boolean")


def parse_timestamp(value: Any) -> datetime | None:
    """A server timestamp as an aware UTC ``datetime``, tolerantly.

    Accepted: ISO 8601 with ``Z``, an offset or none (then UTC), the MySQL form
    ``2024-05-01 10:00:00``, and Unix epoch numbers (seconds, or milliseconds when larger than
    1e11). Empty strings and MySQL's zero date are None (the real server's forms are
    UNCONFIRMED beyond the spec's ``date-time``). Anything else is a ValueError.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("not a finite timestamp")
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    text = value.strip()
    if not text or text.startswith("0000-00-00"):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text[:40]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_timestamp(value: datetime) -> str:
    """The wire form of a timestamp: ISO 8601 UTC with milliseconds and ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[:-3] + "Z"


def _structure_timestamp(value: Any, _: Any) -> datetime | None:
    return parse_timestamp(value)


def _structure_number(value: Any, _: Any) -> Number | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError("not a number")
    number = float(value) if isinstance(value, str) else value
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        if number.is_integer():
            return int(number)
    return number


# The nested objects of a User are informative extras: a server shaping one of them differently
# (a list for ``permissions``, a string for a limit) must not make the whole User unreadable,
# so such a field that does not fit is left None instead of failing the answer.
_LENIENT_NESTED = (
    UserPermissions,
    UserLimits,
    UserLimitsDisabled,
    UserMeta,
    UserConfiguration,
    GenericGUISettings,
)
_LENIENT_TYPES = {cls | None for cls in _LENIENT_NESTED}


def _lenient(value: Any, tp: Any) -> Any:
    if value is None:
        return None
    member = next(a for a in tp.__args__ if a is not type(None))
    try:
        return converter.structure(value, member)
    except Exception:  # noqa: BLE001 - any shape the model cannot read is dropped, see above
        return None


@attrs.frozen
class LoginResult:
    """What one login step yielded: the user, the session token and cookies the server
    returned, and whether the second factor is still due (``mfa_required``: then ``token`` is
    only good for ``login-2fa``)."""

    user: User | None
    token: Secret[str] | None
    cookies: Mapping[str, Secret[str]]
    mfa_required: bool
    source: str | None = None

    @property
    def enrolment_required(self) -> bool:
        """An administrator forced a new authenticator (``authenticatorMustChange``): ``token``
        only serves enrolling one (see ``SessionAPI.complete_reenrolment``)."""
        return self.user is not None and self.user.authenticator_must_change

    @property
    def password_change_required(self) -> bool:
        """The server says the password must be changed (expired or reset)."""
        return self.user is not None and self.user.password_change_required


def _make() -> cattrs.Converter:
    conv = make_converter("camel")
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(datetime, _structure_timestamp)
    conv.register_unstructure_hook(datetime, format_timestamp)
    conv.register_structure_hook_func(lambda t: t in (Number, Number | None), _structure_number)
    conv.register_structure_hook_func(lambda t: t in _LENIENT_TYPES, _lenient)
    return conv


#: The converter of the MetalCloud API: camelCase wire names, tolerant of what servers send.
converter = LazyConverter(_make)
