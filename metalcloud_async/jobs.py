"""Batch administration jobs over MetalCloud users, independent of any command line.

Each job is a :class:`~mfa_common.batch.BatchJob`: a stream of items (CSV rows, or the user
listing), a stable secret-free key per item (the journal's identity), a read-only ``check``
that decides what would change (or why the item is skipped), the write that applies it, and a
``verify`` that settles a write whose answer was lost. Run one with
:func:`mfa_common.batch.run_batch_job` (journaled, resumable, rate-limited; ``dry_run=True``
runs only the checks and returns the planned changes); read a CSV file into rows with
:func:`mfa_common.batch.read_csv` and the row parser of the job. ``metalcloud-async`` runs
the same jobs as its batch commands.

::

    from mfa_common.batch import read_csv, run_batch_job
    from metalcloud_async.jobs import parse_limits_row, set_limits_job

    rows = read_csv("limits.csv", parse_limits_row)  # a bad row is refused before anything is sent
    result = await run_batch_job(set_limits_job(client, rows), journal="limits.journal")

Jobs:

* :func:`force_reenrolment_job`: ``authenticatorMustChange`` for the users of a CSV (column
  ``user``: id or e-mail), or for every user whose authenticator was created before a date.
* :func:`create_users_job`: ``POST /users`` per CSV row (``email``, ``display_name``, optional
  ``access_level``, ``account_id``, ``email_verified``); idempotent by e-mail: a user that
  exists is skipped, so a re-run never creates a duplicate. No password column: new users get
  the server's e-mail to set one (a password in a CSV file would be a secret at rest).
* :func:`add_ssh_keys_job`: one key per row (``user``, ``ssh_key``); a key the user has already
  (same type and body) is skipped.
* :func:`set_limits_job`: per row ``user`` plus one column per limit (wire or snake_case name);
  limits already at the wanted values are skipped.

Every job is safe to re-run: the checks skip what is done already and each write is
absolute, so ``verify`` can tell whether a lost write took effect.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from mfa_common.batch import BatchJob, CsvCells, PlannedChange, Skip
from mfa_common.errors import ConflictError, InvalidInputError, NotFoundError

from .api_users_ssh_keys import ssh_key_identity
from .client import MetalCloudClient
from .errors import EmailAlreadyInUseError, ReenrolmentAlreadyPendingError, SshKeyAlreadyPresentError
from .models import UserLimits, parse_timestamp

__all__ = [
    "LimitsRow",
    "NewUserRow",
    "SshKeyRow",
    "UserRow",
    "add_ssh_keys_job",
    "create_users_job",
    "force_reenrolment_job",
    "parse_limits_row",
    "parse_new_user_row",
    "parse_ssh_key_row",
    "parse_user_row",
    "set_limits_job",
]


def _boolean(text: str, name: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "y"):
        return True
    if lowered in ("0", "false", "no", "n"):
        return False
    raise ValueError(f"{name} must be true or false, got {text[:20]!r}")


def _is_id(text: str) -> bool:
    """A user id: ASCII decimal digits only (``str.isdigit`` also takes "²" and "١٢")."""
    return text.isascii() and text.isdigit()


def _user_ref(text: str) -> str:
    if _is_id(text) or ("@" in text and " " not in text):
        return text
    raise ValueError(f"user must be a user id or an e-mail address, got {text[:40]!r}")


async def _resolve(client: MetalCloudClient, ref: str) -> tuple[int, str | None]:
    """(id, e-mail) of a user given by id or e-mail; a Skip when no such user exists."""
    if _is_id(ref):
        return int(ref), None
    found = await client.users.find_by_email(ref)
    if found is None:
        raise Skip("no such user")
    return found.id, found.email


def _write(
    call: Callable[[], Awaitable[object]], done_already: type[Exception], reason: str
) -> Callable[[], Awaitable[None]]:
    """The write of a planned change: ``call()``, where the server's ``done_already`` error
    (the change was made meanwhile) skips the item with ``reason`` instead of failing it."""

    async def apply() -> None:
        try:
            await call()
        except done_already:
            raise Skip(reason) from None

    return apply


def _key(row: UserRow | NewUserRow | SshKeyRow | LimitsRow) -> str:
    """A row's journal key (its ``key``)."""
    return row.key


# ---------------------------------------------------------------------------- jobs


@attrs.frozen
class UserRow:
    """A row naming one user.

    Attributes:
        user: The user's id or e-mail address.
    """

    user: str

    @property
    def key(self) -> str:
        """The journal key: the user as given."""
        return self.user


def parse_user_row(cells: CsvCells) -> UserRow:
    """A CSV row's user (for :func:`~mfa_common.batch.read_csv`).

    Args:
        cells: The row: a ``user`` column holding an id or an e-mail address.

    Raises:
        ValueError: The cell is empty, or neither an id nor an e-mail address.
    """
    return UserRow(_user_ref(cells.required("user")))


def force_reenrolment_job(
    client: MetalCloudClient,
    *,
    rows: Iterable[UserRow] | None = None,
    created_before: datetime | None = None,
    include_archived: bool = False,
) -> BatchJob[UserRow]:
    """Force a new authenticator at next login (``authenticatorMustChange``). Users for whom it
    is already due are skipped.

    Args:
        client: A logged-in administrator's client.
        rows: The users (every one listed is a target).
        created_before: Without ``rows``: every user with 2FA whose authenticator was created
            before this moment (a naive datetime is taken as UTC).
        include_archived: Without ``rows``: archived users too.

    Returns:
        The job, for :func:`~mfa_common.batch.run_batch_job`.

    Raises:
        InvalidInputError: Neither ``rows`` nor ``created_before``.
    """
    if rows is None and created_before is None:
        raise InvalidInputError("give the users (a CSV) or created_before (every stale authenticator)")
    cutoff = parse_timestamp(created_before) if created_before is not None else None

    async def listed() -> AsyncIterator[UserRow]:
        filters: dict[str, Any] = {} if include_archived else {"archived": False}
        async for info in client.users.list(filters=filters):
            yield UserRow(str(info.id))

    async def check(row: UserRow) -> PlannedChange | Skip:
        uid, email = await _resolve(client, row.user)
        try:
            user = await client.users.get(uid)
        except NotFoundError:
            return Skip("no such user")
        config = user.config or await client.users.get_config(uid)
        if config.authenticator_must_change:
            return Skip("re-enrolment already due")
        created = user.authenticator_created_timestamp
        if cutoff is not None:
            if not user.authenticator_enabled:
                return Skip("no authenticator")
            if created is not None and created >= cutoff:
                return Skip("authenticator is fresh")

        apply = _write(
            lambda: client.users.force_2fa_reenrolment(uid, revision=config.revision),
            ReenrolmentAlreadyPendingError,
            "re-enrolment already due",
        )
        return PlannedChange(
            key=row.user,
            action="force 2FA re-enrolment",
            who=email or user.email or "",
            before={
                "user_id": uid,
                "authenticator_enabled": user.authenticator_enabled,
                "authenticator_created": created.isoformat() if created else None,
            },
            apply=apply,
        )

    async def verify(row: UserRow, before: Mapping[str, Any] | None) -> bool | None:
        uid, _ = await _resolve(client, row.user)
        return (await client.users.get_config(uid)).authenticator_must_change

    if rows is not None:
        return BatchJob("force 2FA re-enrolment", rows, _key, check, verify)
    # The users listed by age: a saved plan names them by id.
    return BatchJob("force 2FA re-enrolment", listed(), _key, check, verify, from_key=UserRow)


@attrs.frozen
class NewUserRow:
    """A user to create (no password: the server mails a link to set one).

    Attributes:
        email: The new user's e-mail address (the journal key, compared without case).
        display_name: The name shown for the user.
        access_level: The user's access level.
        account_id: The account to create the user in (None: the server's default).
        email_verified: Whether the address counts as verified (None: the server's default).
    """

    email: str
    display_name: str
    access_level: str = "user"
    account_id: int | None = None
    email_verified: bool | None = None

    @property
    def key(self) -> str:
        """The journal key: the e-mail address in lower case."""
        return self.email.lower()

    @property
    def change(self) -> NewUserRow:
        """What the creation sets: every column."""
        return self


def parse_new_user_row(cells: CsvCells) -> NewUserRow:
    """A CSV row's new user (for :func:`~mfa_common.batch.read_csv`).

    Args:
        cells: The row: ``email``, ``display_name``, and optionally ``access_level``,
            ``account_id`` (a number) and ``email_verified`` (true/false, yes/no, 1/0).

    Raises:
        ValueError: A required cell is empty, or a cell cannot be read.
    """
    email = cells.required("email")
    if "@" not in email or " " in email:
        raise ValueError(f"email is not an e-mail address: {email[:40]!r}")
    account = cells.get("accountid", "")
    if account and not _is_id(account):
        raise ValueError("account_id must be a number")
    verified = cells.get("emailverified", "")
    return NewUserRow(
        email=email,
        display_name=cells.required("display_name"),
        access_level=cells.get("accesslevel") or "user",
        account_id=int(account) if account else None,
        email_verified=_boolean(verified, "email_verified") if verified else None,
    )


def create_users_job(client: MetalCloudClient, rows: Iterable[NewUserRow]) -> BatchJob[NewUserRow]:
    """Create each user unless one with that e-mail exists (compared without case), so a
    re-run never creates a duplicate.

    Args:
        client: A logged-in administrator's client.
        rows: The users to create.

    Returns:
        The job, for :func:`~mfa_common.batch.run_batch_job`.
    """

    async def check(row: NewUserRow) -> PlannedChange | Skip:
        if await client.users.find_by_email(row.email) is not None:
            return Skip("user exists")

        apply = _write(
            lambda: client.users.create(
                row.email,
                display_name=row.display_name,
                access_level=row.access_level,
                account_id=row.account_id,
                email_verified=row.email_verified,
            ),
            EmailAlreadyInUseError,
            "user exists",
        )

        before = {
            "user_id": None,
            "display_name": row.display_name,
            "access_level": row.access_level,
            "account_id": row.account_id,
        }
        return PlannedChange(row.key, "create user", row.email, before, apply)

    async def verify(row: NewUserRow, before: Mapping[str, Any] | None) -> bool | None:
        return await client.users.find_by_email(row.email) is not None

    return BatchJob("create users", rows, _key, check, verify)


@attrs.frozen
class SshKeyRow:
    """A public key to add to a user.

    Attributes:
        user: The user's id or e-mail address.
        ssh_key: The OpenSSH public key line (``<type> <base64> [comment]``).
    """

    user: str
    ssh_key: str

    @property
    def key(self) -> str:
        """The journal key: the user and a digest of the key's type and body."""
        digest = hashlib.sha256(ssh_key_identity(self.ssh_key).encode()).hexdigest()[:16]
        return f"{self.user}:{digest}"


def parse_ssh_key_row(cells: CsvCells) -> SshKeyRow:
    """A CSV row's key (for :func:`~mfa_common.batch.read_csv`).

    Args:
        cells: The row: ``user`` (id or e-mail address) and ``ssh_key``.

    Raises:
        ValueError: A cell is empty, or the key is not an OpenSSH public key line.
    """
    key = cells.required("ssh_key")
    if len(key.split()) < 2:
        raise ValueError("ssh_key must be an OpenSSH public key line: '<type> <base64> [comment]'")
    return SshKeyRow(_user_ref(cells.required("user")), key)


def add_ssh_keys_job(client: MetalCloudClient, rows: Iterable[SshKeyRow]) -> BatchJob[SshKeyRow]:
    """Add each key unless the user has it already (the same type and body).

    Args:
        client: A logged-in administrator's client.
        rows: The keys to add.

    Returns:
        The job, for :func:`~mfa_common.batch.run_batch_job`.
    """

    async def check(row: SshKeyRow) -> PlannedChange | Skip:
        uid, email = await _resolve(client, row.user)
        try:
            if await client.users.ssh_keys.find(uid, row.ssh_key) is not None:
                return Skip("key present")
        except NotFoundError:
            return Skip("no such user")

        apply = _write(
            lambda: client.users.ssh_keys.add(uid, row.ssh_key), SshKeyAlreadyPresentError, "key present"
        )
        key_type, body = row.ssh_key.split()[:2]
        before = {"user_id": uid, "key_type": key_type, "key_end": body[-12:]}
        return PlannedChange(row.key, "add SSH key", email or "", before, apply)

    async def verify(row: SshKeyRow, before: Mapping[str, Any] | None) -> bool | None:
        uid, _ = await _resolve(client, row.user)
        return await client.users.ssh_keys.find(uid, row.ssh_key) is not None

    return BatchJob("add SSH keys", rows, _key, check, verify, unit="SSH keys")


# Normalised column name (``driveMaxSizeMbytes`` and ``drive_max_size_mbytes`` alike) ->
# (attribute, declared type).
_LIMIT_TYPES = {CsvCells.column(f.name): (f.name, str(f.type)) for f in attrs.fields(UserLimits)}


@attrs.frozen
class LimitsRow:
    """Limits to set for a user.

    Attributes:
        user: The user's id or e-mail address (the journal key).
        limits: The limits to set (only those not None are written).
    """

    user: str
    limits: UserLimits

    @property
    def key(self) -> str:
        """The journal key: the user as given."""
        return self.user

    @property
    def change(self) -> UserLimits:
        """What the write sets."""
        return self.limits


def _limit_value(text: str, kind: str, name: str) -> Any:
    if kind.startswith("bool"):
        return _boolean(text, name)
    if kind.startswith("list"):
        return [part.strip() for part in text.split(";") if part.strip()]
    if kind.startswith("dict"):
        raise ValueError(f"{name} cannot be set from a CSV cell")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text[:20]!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return int(number) if number.is_integer() else number


def parse_limits_row(cells: CsvCells) -> LimitsRow:
    """A CSV row's limits (for :func:`~mfa_common.batch.read_csv`).

    Args:
        cells: The row: ``user`` and one column per limit, by its wire or snake_case name
            (lists separated by ``;``); empty cells are left out.

    Raises:
        ValueError: No limit, an unknown limit column, or a value of the wrong kind.
    """
    user = _user_ref(cells.required("user"))
    values: dict[str, Any] = {}
    for column, text in cells.items():
        if column == "user" or not text:
            continue
        known = _LIMIT_TYPES.get(column)
        if known is None:
            raise ValueError(f"unknown limit column {cells.original(column)!r}")
        name, kind = known
        values[name] = _limit_value(text, kind, name)
    if not values:
        raise ValueError("no limit to set in this row")
    return LimitsRow(user, UserLimits(**values))


def _wanted(limits: UserLimits) -> dict[str, Any]:
    return {k: v for k, v in attrs.asdict(limits).items() if v is not None}


def set_limits_job(client: MetalCloudClient, rows: Iterable[LimitsRow]) -> BatchJob[LimitsRow]:
    """Set each row's limits unless they already have those values.

    Args:
        client: A logged-in administrator's client.
        rows: The limits to set.

    Returns:
        The job, for :func:`~mfa_common.batch.run_batch_job`.
    """

    async def check(row: LimitsRow) -> PlannedChange | Skip:
        uid, email = await _resolve(client, row.user)
        try:
            current = _wanted(await client.users.limits.get(uid))
        except NotFoundError:
            return Skip("no such user")
        wanted = _wanted(row.limits)
        changes = {k: v for k, v in wanted.items() if current.get(k) != v}
        if not changes:
            return Skip("limits already set")

        apply = _write(lambda: client.users.limits.set(uid, row.limits), ConflictError, "limits already set")
        before = {
            "user_id": uid,
            "changes": {k: {"from": current.get(k), "to": v} for k, v in changes.items()},
        }
        return PlannedChange(row.key, "set limits", email or "", before, apply)

    async def verify(row: LimitsRow, before: Mapping[str, Any] | None) -> bool | None:
        uid, _ = await _resolve(client, row.user)
        current = _wanted(await client.users.limits.get(uid))
        return all(current.get(k) == v for k, v in _wanted(row.limits).items())

    return BatchJob("set limits", rows, _key, check, verify)
