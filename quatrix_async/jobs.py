"""Batch MFA administration over Quatrix users, independent of any command line.

Each job is a :class:`~mfa_common.batch.BatchJob` over users given by id or e-mail address
(a CSV's ``id`` or ``email`` column, or a list), or over every user of the account: it reads the
caller's profile and the user listing once, decides per user from the listed MFA state, makes
the change with one ``/user/...-mfa`` call per user, and verifies a call whose answer was lost.
Run one with :func:`mfa_common.batch.run_batch_job` (journaled, resumable, rate-limited;
``dry_run=True`` runs only the checks). ``quatrix-async mfa set|reset|remove`` runs the same
jobs as its batch commands.

::

    from mfa_common.batch import read_csv, run_batch_job
    from quatrix_async.jobs import parse_user_ref, reset_mfa_job

    users = read_csv("users.csv", parse_user_ref)  # a bad row is refused before anything is sent
    result = await run_batch_job(reset_mfa_job(client, users), journal="reset.journal")

Jobs:

* :func:`set_mfa_job`: turn 2FA (then forced) or a PIN on; a user whose 2FA is already on and
  forced is skipped.
* :func:`reset_mfa_job`: wipe users' 2FA secrets; they set 2FA up again at their next login.
  Users without 2FA are skipped.
* :func:`remove_mfa_job`: turn 2FA or the PIN off (refused by the server where 2FA is forced
  for the account); users without it are skipped.

The caller's own account is always skipped (its MFA is changed through ``client.profile``).
``auth_methods`` / ``forced_auth`` in the user listing are UNCONFIRMED on the real server;
``force=True`` ignores them (every given user is changed). A user the account does not have
fails with :class:`UnknownUserError` and the batch goes on.

Lost answers: a set 2FA or a removal is verified from the user's MFA state; a reset from the
user's ``modified`` time (it moves on when the reset is applied; UNCONFIRMED on the real server,
the fake does so); a PIN set for a user who had one already cannot be told apart, nor can a
reset verified without the state planned before it (a run resumed from a journal): those stay
unknown rather than being repeated. A reset is not idempotent (a late repeat would wipe a
secret the user has just set up); setting and removing are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from mfa_common.batch import BatchJob, CsvCells, PlannedChange, PlannedSkip, Skip
from mfa_common.errors import InvalidInputError
from mfa_common.secret import Secret, wrap

from .protocol import auth_type_of

if TYPE_CHECKING:
    from .client import QuatrixClient
    from .models import AuthType, ProfileResp, UserResp

__all__ = [
    "MfaTarget",
    "UnknownUserError",
    "UserRef",
    "parse_user_ref",
    "remove_mfa_job",
    "reset_mfa_job",
    "set_mfa_job",
]

# POST /user/set-mfa requires a ``code`` even for 2FA; what the server does with it there is
# UNCONFIRMED (the fake ignores it), so a fixed, well-formed placeholder is sent.
_SET_2FA_PLACEHOLDER_CODE = "000000"


class UnknownUserError(InvalidInputError):
    """A user given to a job that the account does not have (the item fails, the batch goes on)."""


@attrs.frozen
class UserRef:
    """A user as a CSV row or a caller names it.

    Attributes:
        column: ``"id"`` or ``"email"``.
        value: The id or the e-mail address.
    """

    column: str
    value: str

    @property
    def key(self) -> str:
        """The journal key of a user the account does not have (``email:x@y``)."""
        return f"{self.column}:{self.value}"

    @classmethod
    def of(cls, user: UserRef | str) -> UserRef:
        """A :class:`UserRef` from what a caller gives.

        Args:
            user: A :class:`UserRef` (returned as it is), or a string: an e-mail address when
                it has an ``@``, else an id.
        """
        if isinstance(user, UserRef):
            return user
        return cls("email" if "@" in user else "id", user.strip())


def parse_user_ref(cells: CsvCells) -> UserRef:
    """A CSV row's user (for :func:`~mfa_common.batch.read_csv`).

    Args:
        cells: The row.

    Returns:
        Its ``id`` when the file has that column, else its ``email``.

    Raises:
        ValueError: The file has neither column, or the row's cell is empty.
    """
    for column in ("id", "email"):
        if column in cells:
            return UserRef(column, cells.required(column))
    raise ValueError("the file needs a header row with an 'id' or 'email' column")


@attrs.frozen
class MfaTarget:
    """One user of a job.

    Attributes:
        key: The journal key (the user's id once known).
        label: How the user was given (an id or an e-mail address).
        user_id: The user's id; None for a user the account does not have.
        user: The user as the listing showed it (None: read when checked).
    """

    key: str
    label: str
    user_id: str | None
    user: UserResp | None = None


def _iso(moment: datetime | None) -> str | None:
    """A model's datetime as plans and journals keep it (JSON)."""
    return moment.isoformat() if moment is not None else None


def _mfa_state(user: UserResp) -> dict[str, Any]:
    """The state a change is planned from (and compared with before a saved plan is applied)."""
    return {
        "auth_methods": sorted(user.auth_methods),
        "forced_auth": sorted(user.forced_auth),
        "modified": _iso(user.modified),
    }


@attrs.define
class _Account:
    """What every user's check reads once: the caller's profile and the user listing."""

    me: ProfileResp | None = None
    by_id: dict[str, UserResp] = attrs.Factory(dict)
    by_email: dict[str, UserResp] = attrs.Factory(dict)

    async def load(self, client: QuatrixClient) -> None:
        self.me = await client.profile.get()
        users = await client.users.list()
        self.by_id = {u.id: u for u in users if u.id}
        self.by_email = {u.email.lower(): u for u in users if u.email}

    def targets(self, users: Iterable[UserRef | str] | None) -> Iterator[MfaTarget]:
        """Every user of the account, or the given ones, once each (a repeated one is dropped)."""
        if users is None:
            for uid, user in self.by_id.items():
                yield MfaTarget(uid, user.email or uid, uid, user)
            return
        seen: set[str] = set()
        for given in users:
            ref = UserRef.of(given)
            found = self.by_id.get(ref.value) if ref.column == "id" else self.by_email.get(ref.value.lower())
            if found is not None and found.id:
                target = MfaTarget(found.id, ref.value, found.id, found)
            else:
                target = MfaTarget(ref.key, ref.value, None)
            if target.key not in seen:
                seen.add(target.key)
                yield target


def _skip_reason(verb: str, kind: str, user: UserResp, me: ProfileResp | None, force: bool) -> str | None:
    if me is not None and user.id == me.id:
        return "own account (use the profile commands)"
    if force:
        return None
    methods, forced = set(user.auth_methods), set(user.forced_auth)
    if verb == "set":
        return "2FA already set" if kind == "2FA" and "2FA" in methods and "2FA" in forced else None
    if verb == "reset":
        return None if "2FA" in methods else "no 2FA to reset"
    return None if (kind in methods or kind in forced) else f"{kind} not enabled"


def _mfa_job(
    client: QuatrixClient,
    verb: str,
    kind: str,
    users: Iterable[UserRef | str] | None,
    force: bool,
    write: Callable[[str], Awaitable[object]],
    verify_write: Callable[[UserResp, Mapping[str, Any] | None], bool | None],
) -> BatchJob[MfaTarget]:
    account = _Account()
    action = f"{verb} {kind}"

    async def start() -> None:
        await account.load(client)

    async def check(target: MfaTarget) -> PlannedChange | Skip:
        if target.user_id is None:
            raise UnknownUserError(f"unknown user {target.label!r} (not in this account)")
        uid = target.user_id
        user = target.user or await client.users.metadata(uid)
        state = _mfa_state(user)
        reason = _skip_reason(verb, kind, user, account.me, force)
        if reason is not None:
            return PlannedSkip(reason, who=user.email or "", before=state)

        async def apply() -> None:
            await write(uid)

        return PlannedChange(uid, action, user.email or "", state, apply)

    async def verify(target: MfaTarget, before: Mapping[str, Any] | None) -> bool | None:
        if target.user_id is None:
            return None
        return verify_write(await client.users.metadata(target.user_id), before)

    return BatchJob(
        action,
        account.targets(users),
        lambda target: target.key,
        check,
        verify,
        start=start,
        total=(lambda: len(account.by_id)) if users is None else None,
        # A saved plan names its users by id.
        from_key=lambda key: MfaTarget(key, key, key),
    )


def set_mfa_job(
    client: QuatrixClient,
    auth_type: AuthType | str = "2FA",
    users: Iterable[UserRef | str] | None = None,
    *,
    pin: str | Secret[str] | None = None,
    force: bool = False,
) -> BatchJob[MfaTarget]:
    """Turn MFA on for users: ``"2FA"`` is then forced at their next login; ``"PIN"`` sets
    ``pin``. A user whose 2FA is already on and forced is skipped.

    Args:
        client: A logged-in administrator's client.
        auth_type: ``"2FA"`` or ``"PIN"``.
        users: Ids, e-mail addresses or :class:`UserRef` objects (None: every user of the
            account but the caller).
        pin: The PIN to set, which a run that writes needs with ``"PIN"`` (a dry run does not).
        force: Change every given user whatever the listing says of their MFA state (the
            listing's ``auth_methods`` / ``forced_auth`` are unconfirmed on the real server).

    Returns:
        The job, for :func:`~mfa_common.batch.run_batch_job`.

    Raises:
        InvalidInputError: An unknown ``auth_type``.
    """
    kind = auth_type_of(auth_type).value
    secret = wrap(pin) if pin is not None else None

    async def write(uid: str) -> None:
        if kind == "2FA":
            code: Secret[str] = Secret(_SET_2FA_PLACEHOLDER_CODE)
        elif secret is None:
            raise InvalidInputError("set_mfa_job(..., 'PIN') was given no pin= to set")
        else:
            code = secret
        await client.mfa.set_for_users([uid], kind, code)

    def applied(now: UserResp, before: Mapping[str, Any] | None) -> bool | None:
        if kind == "2FA":
            return "2FA" in now.forced_auth
        if before is not None and "PIN" not in before.get("auth_methods", []):
            return "PIN" in now.auth_methods
        return None  # a PIN replaced by another one looks the same

    return _mfa_job(client, "set", kind, users, force, write, applied)


def reset_mfa_job(
    client: QuatrixClient, users: Iterable[UserRef | str] | None = None, *, force: bool = False
) -> BatchJob[MfaTarget]:
    """Wipe users' 2FA secrets: MFA stays on, and they set 2FA up again at their next login.
    Users without 2FA are skipped.

    Args:
        client: A logged-in administrator's client.
        users: Ids, e-mail addresses or :class:`UserRef` objects (None: every user of the
            account but the caller).
        force: Change every given user whatever the listing says of their MFA state (the
            listing's ``auth_methods`` / ``forced_auth`` are unconfirmed on the real server).

    Returns:
        The job, for :func:`~mfa_common.batch.run_batch_job`.
    """

    async def write(uid: str) -> None:
        await client.mfa.reset_for_users([uid])

    def applied(now: UserResp, before: Mapping[str, Any] | None) -> bool | None:
        # The reset leaves MFA on; what shows it was applied is the user's modified time.
        planned = before.get("modified") if before is not None else None
        return None if planned is None or now.modified is None else _iso(now.modified) != planned

    return _mfa_job(client, "reset", "2FA", users, force, write, applied)


def remove_mfa_job(
    client: QuatrixClient,
    auth_type: AuthType | str = "2FA",
    users: Iterable[UserRef | str] | None = None,
    *,
    force: bool = False,
) -> BatchJob[MfaTarget]:
    """Turn 2FA or the PIN off for users (refused by the server where 2FA is forced for the
    account). Users without it are skipped.

    Args:
        client: A logged-in administrator's client.
        auth_type: ``"2FA"`` or ``"PIN"``.
        users: Ids, e-mail addresses or :class:`UserRef` objects (None: every user of the
            account but the caller).
        force: Change every given user whatever the listing says of their MFA state (the
            listing's ``auth_methods`` / ``forced_auth`` are unconfirmed on the real server).

    Returns:
        The job, for :func:`~mfa_common.batch.run_batch_job`.

    Raises:
        InvalidInputError: An unknown ``auth_type``.
    """
    kind = auth_type_of(auth_type).value

    async def write(uid: str) -> None:
        await client.mfa.remove_for_users([uid], kind)

    def applied(now: UserResp, before: Mapping[str, Any] | None) -> bool | None:
        return kind not in now.auth_methods and kind not in now.forced_auth

    return _mfa_job(client, "remove", kind, users, force, write, applied)
