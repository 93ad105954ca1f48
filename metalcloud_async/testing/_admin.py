"""The MetalCloud fake's user-administration handlers: user creation, configuration and meta,
account changes, e-mail verification, suspend reasons, limits, delegates, permissions, SSH keys
and the authentication-provider lookup.

Rules shared with the rest of the fake: reads of another user need an administrator; every
applied write is recorded in the controls' ledger; writes whose operation declares ``If-Match``
answer 428 without it and 412 when it names another revision. A user and its configuration
are one row with one revision: every user write, ``PATCH .../config`` included, compares and
bumps the user's revision (what the official CLI sends there), and every read of an object whose
write takes ``If-Match`` (the user, its configuration, limits and permissions) carries it as
``ETag``. A
created user's ``201`` names its URL in ``Location``. ``PATCH .../meta`` declares no ``If-Match`` but lists
412/428: the fake compares a revision when one is sent and does not require it (UNCONFIRMED).

Where the real server is silent the fake chooses, and says so here: a delegate added to user U
becomes a *child* delegate of U and U a *parent* delegate of it; a user created without a
password gets a random one and must change it (``passwordChangeRequired``); an unknown account
id is a 404; a duplicate e-mail or SSH key is a 409; the limits a user starts with are
:data:`DEFAULT_LIMITS`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._wire import Fail, check_if_match, iso, parse_iso, validate_fields

if TYPE_CHECKING:
    from ._fake import FakeUser, MetalCloudFake

__all__ = ["DEFAULT_LIMITS", "AdminHandlers"]

Handler = Callable[[Request, Any], Response]

#: The limits a new user has (a plausible subset of the spec's ``UserLimits``).
DEFAULT_LIMITS: dict[str, Any] = {
    "infrastructureActiveMaxCount": 10,
    "infrastructureInstanceArrayMaxCount": 20,
    "instanceArrayInstancesMaxCount": 16,
    "driveMaxSizeMbytes": 1_048_576,
    "driveMinSizeMbytes": 1024,
    "userSshKeysCountMax": 10,
    "userResourceServersMaxCount": 50,
    "ownerIsBillable": True,
    "allowVlanOverrides": False,
    "storageTypes": ["iscsi_ssd", "iscsi_hdd"],
}

# Field -> JSON type of the spec's request schemas (class-validator checks on the server).
_UPDATE_USER = {
    "displayName": "string",
    "emailStatus": "string",
    "language": "string",
    "brand": "string",
    "isBrandManager": "boolean",
    "lastLoginTimestamp": "string",
    "lastLoginType": "string",
    "isBlocked": "boolean",
    "passwordChangeRequired": "boolean",
    "accessLevel": "string",
    "isBillable": "boolean",
    "isTestingMode": "boolean",
    "infrastructureIdDefault": "number",
    "authenticatorMustChange": "boolean",
    "authenticatorCreatedTimestamp": "string",
    "promotionTags": "array",
    "experimentalTags": "array",
    "externalIds": "object",
    "excludeFromReports": "boolean",
    "isTestAccount": "boolean",
    "isArchived": "boolean",
    "isDatastorePublisher": "boolean",
    "accountId": "number",
    "provider": "string",
    "passwordLastChangedTimestamp": "string",
}
_UPDATE_USER_ENUMS = {
    "emailStatus": ("not_verified", "verified"),
    "language": ("en", "ro"),
    "lastLoginType": ("md5", "smtp"),
    "provider": ("mysql", "ldap", "saml"),
    "experimentalTags": ("storage_pools", "vm_pools", "servers", "volume_template"),
}
_CREATE_USER = {
    "displayName": "string",
    "accessLevel": "string",
    "email": "string",
    "password": "string",
    "emailVerified": "boolean",
    "createWithAccount": "boolean",
    "accountId": "number",
}
_GUI_SETTINGS = {
    "rowIndex": "number",
    "columnIndex": "number",
    "showWidgetChildren": "boolean",
    "randomInstanceID": "string",
    "userAgent": "string",
}
_REVEAL = (
    "cluster",
    "instance",
    "drive",
    "hdfs",
    "datacenter",
    "chassis_rack",
    "container",
    "storage_pool",
    "server",
    "switch",
    "workflow",
)
_TIMESTAMP_FIELDS = {
    "authenticatorCreatedTimestamp": "authenticator_created_at",
    "lastLoginTimestamp": "last_login_at",
    "passwordLastChangedTimestamp": "password_changed_at",
}
_SSH_KEY_TYPES = (
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def _limit_fields() -> dict[str, str]:
    from ..models import UserLimits

    out: dict[str, str] = {}
    for a in UserLimits.__attrs_attrs__:
        name = "".join(p.capitalize() if i else p for i, p in enumerate(a.name.split("_")))
        kind = str(a.type)
        out[name] = (
            "boolean"
            if kind.startswith("bool")
            else "array"
            if kind.startswith("list")
            else "object"
            if kind.startswith("dict")
            else "number"
        )
    return out


_LIMITS = _limit_fields()


def _ssh_key_problem(text: str) -> str | None:
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES:
        return "sshKey must be an OpenSSH public key (type, base64 key, optional comment)"
    import base64
    import binascii

    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return "sshKey must be an OpenSSH public key (the key is not base64)"
    if len(blob) < 16:
        return "sshKey must be an OpenSSH public key (the key is too short)"
    return None


def _key_identity(text: str) -> str:
    """Two keys are the same key when type and base64 body agree (the comment does not count)."""
    parts = text.strip().split()
    return " ".join(parts[:2])


class AdminHandlers:
    """Handlers of the administration operations, over the state of ``fake``."""

    def __init__(self, fake: MetalCloudFake) -> None:
        self.fake = fake
        self._next_key = 1
        self._next_account = 9000
        #: Every SSH key ever added: id -> the ``UserSSHKeys`` record (deleted keys stay, marked).
        self.ssh_keys: dict[int, dict[str, Any]] = {}

    def routes(self) -> Iterator[tuple[str, str, Handler]]:
        u = "/users/{user_id:int}"
        yield "GET", "/authentication-provider", self.authentication_provider
        yield "POST", "/users", self.create_user
        yield "GET", u + "/config", self.get_config
        yield "PATCH", u + "/config", self.update_config
        yield "PATCH", u + "/meta", self.update_meta
        yield "POST", u + "/actions/change-account", self.change_account
        yield "POST", u + "/actions/resend-email-verification", self.resend_verification
        yield "GET", u + "/suspend-reasons", self.suspend_reasons
        yield "GET", u + "/limits", self.get_limits
        yield "GET", u + "/disabled-limits", self.disabled_limits
        yield "GET", u + "/default-limits", self.default_limits
        yield "PATCH", u + "/actions/change-limits", self.change_limits
        yield "GET", u + "/parent-delegates", self.parent_delegates
        yield "GET", u + "/child-delegates", self.child_delegates
        yield "POST", u + "/actions/add-delegate/{delegate_id:int}", self.add_delegate
        yield "POST", u + "/actions/remove-delegate/{delegate_id:int}", self.remove_delegate
        yield "GET", u + "/permissions", self.get_permissions
        yield "POST", u + "/actions/change-resource-permissions", self.change_permissions
        yield "GET", u + "/ssh-keys", self.list_ssh_keys
        yield "POST", u + "/ssh-keys", self.add_ssh_key
        yield "GET", u + "/ssh-keys/{key_id:int}", self.get_ssh_key
        yield "DELETE", u + "/ssh-keys/{key_id:int}", self.delete_ssh_key

    # -- helpers ---------------------------------------------------------------------------

    def _target(self, request: Request, *, admin: bool = False) -> FakeUser:
        caller, target = self.fake._target(request)
        if admin:
            self.fake._require_admin(caller)
        return target

    def _known_accounts(self) -> set[int]:
        return {u.account_id for u in self.fake.users if u.account_id is not None}

    def _user_list(self, users: list[FakeUser]) -> JSONResponse:
        return JSONResponse({"data": [self.fake.user_info_json(u) for u in users]})

    @staticmethod
    def _tagged(body: Any, user: FakeUser) -> JSONResponse:
        """``body`` with the user's revision as ``ETag`` (the one its writes compare)."""
        return JSONResponse(body, headers={"ETag": str(user.revision)})

    def _config_response(self, user: FakeUser) -> JSONResponse:
        return self._tagged(self.fake.config_json(user), user)

    # -- authentication provider -----------------------------------------------------------

    def authentication_provider(self, request: Request, body: Any) -> Response:
        self.fake._authenticate(request)
        email = request.query_params.get("email")
        if not email or "@" not in email or email.strip() != email:
            raise Fail(400, ["email must be an email"])
        user = self.fake.find_user(email)
        if user is None:
            raise Fail(404, "Authentication provider not found")
        provider = str(user.config_extra.get("provider", "mysql"))
        answer: dict[str, Any] = {"provider": provider}
        if provider == "saml":
            answer["ssoEntryPoint"] = "https://sso.metalcloud.invalid/saml"
        return JSONResponse(answer)

    # -- users -----------------------------------------------------------------------------

    def create_user(self, request: Request, body: Any) -> Response:
        caller, _, _ = self.fake._authenticate(request)
        self.fake._require_admin(caller)
        data = validate_fields(body, _CREATE_USER, required=("displayName", "email", "accessLevel"))
        email = data["email"]
        if "@" not in email or email.strip() != email or len(email) > 254:
            raise Fail(400, ["email must be an email"])
        if not data["displayName"].strip():
            raise Fail(400, ["displayName should not be empty"])
        password = data.get("password")
        if password is not None and len(password) < 8:
            raise Fail(400, ["password must be longer than or equal to 8 characters"])
        if self.fake.find_user(email) is not None:
            raise Fail(409, "A user with this email address already exists")
        account = data.get("accountId")
        if account is not None:
            if not float(account).is_integer() or int(account) not in self._known_accounts():
                raise Fail(404, "Account not found")
            account = int(account)
        elif data.get("createWithAccount"):
            self._next_account += 1
            account = self._next_account
        verified = bool(data.get("emailVerified", False))
        user = self.fake.add_user(
            email,
            password if password is not None else secrets.token_urlsafe(18),
            display_name=data["displayName"],
            access_level=data["accessLevel"],
            account_id=account,
            email_verified=verified,
        )
        user.password_change_required = password is None
        if not verified:
            self._send_verification(user)
        self.fake.controls.ledger.record("create-user", str(user.id), email=email, revision=user.revision)
        headers = {"ETag": str(user.revision), "Location": f"/api/v2/users/{user.id}"}
        return JSONResponse(self.fake.user_json(user), status_code=201, headers=headers)

    def _send_verification(self, user: FakeUser) -> None:
        from ._fake import SentEmail

        token = secrets.token_urlsafe(24)
        self.fake._tokens[token] = ("verify-email", user.id, None, False)
        self.fake.outbox.append(SentEmail("verify-email", user.email, token, user.id))

    def get_config(self, request: Request, body: Any) -> Response:
        return self._config_response(self._target(request))

    def update_config(self, request: Request, body: Any) -> Response:
        user = self._target(request, admin=True)
        data = validate_fields(
            body,
            _UPDATE_USER,
            enums=_UPDATE_USER_ENUMS,
            items={"promotionTags": "string", "experimentalTags": "string"},
        )
        allowed_tags = _UPDATE_USER_ENUMS["experimentalTags"]
        if any(tag not in allowed_tags for tag in data.get("experimentalTags") or []):
            raise Fail(400, ["each value in experimentalTags must be one of: " + ", ".join(allowed_tags)])
        stamps: dict[str, float] = {}
        for wire, _attr in _TIMESTAMP_FIELDS.items():
            if data.get(wire) is not None:
                parsed = parse_iso(data[wire])
                if parsed is None:
                    raise Fail(400, [f"{wire} must be a valid ISO 8601 date string"])
                stamps[wire] = parsed
        if "displayName" in data and not str(data["displayName"]).strip():
            raise Fail(400, ["displayName should not be empty"])
        account = data.get("accountId")
        if account is not None and (
            not float(account).is_integer() or int(account) not in self._known_accounts()
        ):
            raise Fail(404, "Account not found")
        check_if_match(request, user.revision)
        if data.get("authenticatorMustChange") is True and user.authenticator_must_change:
            raise Fail(409, "The authenticator is already due to change")
        for wire, value in data.items():
            if value is None:
                continue
            if wire == "displayName":
                user.display_name = value
            elif wire == "accessLevel":
                user.access_level = value
            elif wire == "isBillable":
                user.is_billable = value
            elif wire == "passwordChangeRequired":
                user.password_change_required = value
            elif wire == "authenticatorMustChange":
                user.authenticator_must_change = value
            elif wire == "isArchived":
                user.archived = value
            elif wire == "emailStatus":
                user.email_verified = value == "verified"
            elif wire == "accountId":
                user.account_id = int(value)
            elif wire == "infrastructureIdDefault":
                user.infrastructure_id_default = int(value)
            elif wire in stamps:
                setattr(user, _TIMESTAMP_FIELDS[wire], stamps[wire])
            else:
                user.config_extra[wire] = value
        self.fake.bump(user, "update-config", fields=sorted(k for k, v in data.items() if v is not None))
        return self._config_response(user)

    def update_meta(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        data = validate_fields(body, {"guiSettings": "object"})
        settings = data.get("guiSettings")
        if settings is not None:
            validate_fields(settings, _GUI_SETTINGS)
        check_if_match(request, user.revision, required=False)
        if settings is not None:
            user.meta["guiSettings"] = {**user.meta.get("guiSettings", {}), **settings}
        self.fake.bump(user, "update-meta")
        return JSONResponse(dict(user.meta))

    def change_account(self, request: Request, body: Any) -> Response:
        user = self._target(request, admin=True)
        data = validate_fields(body, {"newAccountId": "number"}, required=("newAccountId",))
        new = data["newAccountId"]
        if not float(new).is_integer() or new < 1:
            raise Fail(400, ["newAccountId must be a positive integer"])
        if int(new) not in self._known_accounts():
            raise Fail(404, "Account not found")
        check_if_match(request, user.revision)
        if user.account_id == int(new):
            raise Fail(409, "The user already belongs to this account")
        user.account_id = int(new)
        self.fake.bump(user, "change-account", account_id=int(new))
        return self.fake._user_response(user)

    def resend_verification(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        data = validate_fields(body if body is not None else {}, {"redirectUrl": "string"})
        if data.get("redirectUrl") is not None and not str(data["redirectUrl"]).startswith(
            ("http://", "https://")
        ):
            raise Fail(400, ["redirectUrl must be a URL address"])
        if user.email_verified:
            raise Fail(409, "The e-mail address is already verified")
        self._send_verification(user)
        self.fake.controls.ledger.record("resend-email-verification", str(user.id))
        return self.fake._user_response(user)

    def suspend_reasons(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        return JSONResponse({"data": [dict(r) for r in user.suspend_reasons]})

    # -- limits ----------------------------------------------------------------------------

    def get_limits(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        return self._tagged({**DEFAULT_LIMITS, **user.limits}, user)

    def default_limits(self, request: Request, body: Any) -> Response:
        return self._tagged(dict(DEFAULT_LIMITS), self._target(request))

    def disabled_limits(self, request: Request, body: Any) -> Response:
        self._target(request)
        # The fake has no SAN: the limits that need one are disabled, as on a server without it.
        return JSONResponse({"infrastructureSanMaxCount": "No SAN storage is configured"})

    def change_limits(self, request: Request, body: Any) -> Response:
        user = self._target(request, admin=True)
        data = validate_fields(body, _LIMITS, items={"storageTypes": "string"})
        problems = [
            f"{k} must not be less than 0"
            for k, v in data.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0
        ]
        if problems:
            raise Fail(400, problems)
        check_if_match(request, user.revision)
        current = {**DEFAULT_LIMITS, **user.limits}
        changes = {k: v for k, v in data.items() if v is not None and current.get(k) != v}
        if not changes:
            raise Fail(409, "The limits are already set to these values")
        user.limits.update(changes)
        self.fake.bump(user, "change-limits", fields=sorted(changes))
        return self._tagged({**DEFAULT_LIMITS, **user.limits}, user)

    # -- delegates -------------------------------------------------------------------------

    def parent_delegates(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        return self._user_list([u for u in self.fake.users if user.id in u.delegates])

    def child_delegates(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        return self._user_list([self.fake._users[i] for i in sorted(user.delegates) if i in self.fake._users])

    def _delegate(self, request: Request) -> tuple[FakeUser, FakeUser]:
        caller, user = self.fake._target(request)
        if caller.id != user.id:
            self.fake._require_admin(caller)
        delegate_id = int(request.path_params["delegate_id"])
        if delegate_id == user.id:
            raise Fail(400, "A user cannot be its own delegate")
        delegate = self.fake.find_user(delegate_id)
        if delegate is None:
            raise Fail(404, "Delegate user not found")
        return user, delegate

    def add_delegate(self, request: Request, body: Any) -> Response:
        user, delegate = self._delegate(request)
        if delegate.id in user.delegates:
            raise Fail(409, "This user is already a delegate")
        user.delegates.add(delegate.id)
        self.fake.bump(user, "add-delegate", delegate=delegate.id)
        return self.fake._user_response(user)

    def remove_delegate(self, request: Request, body: Any) -> Response:
        user, delegate = self._delegate(request)
        if delegate.id not in user.delegates:
            raise Fail(404, "This user is not a delegate")
        user.delegates.discard(delegate.id)
        self.fake.bump(user, "remove-delegate", delegate=delegate.id)
        return self.fake._user_response(user)

    # -- permissions -----------------------------------------------------------------------

    def _permissions(self, user: FakeUser) -> dict[str, Any]:
        roles = ["admin"] if user.is_admin else ["user"]
        return {
            "rolePermissions": roles,
            "adminPasswordRevealPermissions": dict(
                user.permissions.get("adminPasswordRevealPermissions", {})
            ),
            "specialPermissions": dict(user.permissions.get("specialPermissions", {})),
        }

    def get_permissions(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        return self._tagged(self._permissions(user), user)

    def change_permissions(self, request: Request, body: Any) -> Response:
        user = self._target(request, admin=True)
        data = validate_fields(
            body, {"adminPasswordRevealPermissions": "object", "specialPermissions": "object"}
        )
        reveal = data.get("adminPasswordRevealPermissions")
        special = data.get("specialPermissions")
        if reveal is not None:
            validate_fields(reveal, dict.fromkeys(_REVEAL, "boolean"))
        if special is not None:
            validate_fields(special, {"create_verified_user": "boolean"})
        check_if_match(request, user.revision)
        before = self._permissions(user)
        for name, value in (("adminPasswordRevealPermissions", reveal), ("specialPermissions", special)):
            if value:
                user.permissions[name] = {**user.permissions.get(name, {}), **value}
        after = self._permissions(user)
        if after == before:
            raise Fail(409, "The permissions are already set to these values")
        self.fake.bump(user, "change-permissions")
        return self._tagged(after, user)

    # -- SSH keys --------------------------------------------------------------------------

    def _active_keys(self, user: FakeUser) -> list[dict[str, Any]]:
        return [k for k in self.ssh_keys.values() if k["userId"] == user.id and k["status"] == "active"]

    def list_ssh_keys(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        return JSONResponse({"data": [dict(k) for k in self._active_keys(user)]})

    def add_ssh_key(self, request: Request, body: Any) -> Response:
        user = self._target(request)
        data = validate_fields(body, {"sshKey": "string"}, required=("sshKey",))
        problem = _ssh_key_problem(data["sshKey"])
        if problem is not None:
            raise Fail(400, [problem])
        identity = _key_identity(data["sshKey"])
        if any(_key_identity(k["sshKey"]) == identity for k in self._active_keys(user)):
            raise Fail(409, "This SSH key is already present")
        limit = {**DEFAULT_LIMITS, **user.limits}.get("userSshKeysCountMax")
        if isinstance(limit, (int, float)) and len(self._active_keys(user)) >= limit:
            raise Fail(409, "The SSH key limit of this user is reached")
        record = {
            "id": self._next_key,
            "userId": user.id,
            "sshKey": data["sshKey"].strip(),
            "createdTimestamp": iso(self.fake.clock.now()),
            "status": "active",
        }
        self._next_key += 1
        self.ssh_keys[record["id"]] = record
        self.fake.controls.ledger.record("add-ssh-key", str(user.id), key_id=record["id"])
        return JSONResponse(dict(record), status_code=201)

    def _key(self, request: Request) -> tuple[FakeUser, dict[str, Any]]:
        user = self._target(request)
        record = self.ssh_keys.get(int(request.path_params["key_id"]))
        if record is None or record["userId"] != user.id or record["status"] != "active":
            raise Fail(404, "SSH key not found")
        return user, record

    def get_ssh_key(self, request: Request, body: Any) -> Response:
        _, record = self._key(request)
        return JSONResponse(dict(record))

    def delete_ssh_key(self, request: Request, body: Any) -> Response:
        user, record = self._key(request)
        record["status"] = "deleted"
        self.fake.controls.ledger.record("delete-ssh-key", str(user.id), key_id=record["id"])
        return Response(status_code=204)
