"""Batch administration jobs over MetalCloud users, independent of any command line.

Each job is an :class:`AdminJob`: a stream of items (CSV rows, or the user listing), a stable
secret-free key per item (the journal's identity), a read-only ``check`` that decides what
would change (or why the item is skipped), the write that applies it, and a ``verify`` that
settles a write whose answer was lost. :func:`run_admin_job` runs one through
:func:`mfa_common.batch.run_batch` (journaled, resumable, rate-limited) or, with
``dry_run=True``, runs only the checks and returns the planned changes.

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

import csv
import hashlib
import math
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from mfa_common.batch import BatchProgress, BatchSummary, Journal, Skip, run_batch
from mfa_common.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)

from .api_users_ssh_keys import ssh_key_identity
from .client import MetalCloudClient
from .errors import EmailAlreadyInUseError, ReenrolmentAlreadyPendingError, SshKeyAlreadyPresentError
from .models import UserLimits, parse_timestamp

__all__ = [
    "AdminJob",
    "CsvRowError",
    "JobResult",
    "PlannedChange",
    "add_ssh_keys_job",
    "create_users_job",
    "force_reenrolment_job",
    "read_csv",
    "run_admin_job",
    "set_limits_job",
]

T = TypeVar("T")

#: A batch that meets one of these stops: every further item would fail the same way.
STOP_ON = (AuthenticationError, PermissionDeniedError)


class CsvRowError(InvalidInputError):
    """A CSV row that cannot become an item: ``line`` (1-based, the header is line 1) and why.
    The whole file is checked before anything is sent."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{os.path.basename(path)} line {line}: {message}")
        self.line = line


@attrs.frozen
class PlannedChange:
    """A change a check decided on: who, what, from which state. ``apply`` makes it."""

    key: str
    action: str
    user_id: int | None
    email: str | None
    details: Mapping[str, Any]
    apply: Callable[[], Awaitable[Any]] = attrs.field(repr=False, eq=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what a dry run prints)."""
        return {
            "key": self.key,
            "action": self.action,
            "user_id": self.user_id,
            "email": self.email,
            **dict(self.details),
        }


@attrs.frozen
class AdminJob(Generic[T]):
    """One batch job: ``items``, their ``key``, the read-only ``check`` (a planned change or a
    :class:`~mfa_common.batch.Skip`), and ``verify`` (True: a lost write took effect; False:
    it did not, safe to repeat; None: cannot tell)."""

    name: str
    items: Iterable[T] | AsyncIterable[T]
    key: Callable[[T], str]
    check: Callable[[T], Awaitable[PlannedChange | Skip]]
    verify: Callable[[T], Awaitable[bool | None]]


@attrs.frozen
class JobResult:
    """The summary of a run, and the planned changes of a dry run (in item order of finish)."""

    name: str
    summary: BatchSummary
    dry_run: bool
    planned: list[dict[str, Any]] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.name, "dry_run": self.dry_run, "ok": self.summary.ok}
        out.update(self.summary.as_dict())
        if self.dry_run:
            out["would_change"] = self.planned
            out["count"] = len(self.planned)
        return out


async def run_admin_job(
    job: AdminJob[T],
    *,
    dry_run: bool = False,
    concurrency: int = 10,
    rate: float | None = None,
    journal: str | os.PathLike[str] | None = None,
    on_progress: Callable[[BatchProgress], object] | None = None,
) -> JobResult:
    """Run ``job``: check each item and apply its change (or, ``dry_run``, only check and
    collect the plan; no journal is written then). Stops early on a refused credential."""
    planned: list[dict[str, Any]] = []

    async def operation(item: T) -> Skip | None:
        decided = await job.check(item)
        if isinstance(decided, Skip):
            return decided
        if dry_run:
            planned.append(decided.as_dict())
            return None
        await decided.apply()
        return None

    summary = await run_batch(
        job.items,
        operation,
        key=job.key,
        concurrency=concurrency,
        rate=rate,
        journal=Journal(journal) if journal is not None and not dry_run else None,
        on_progress=on_progress,
        verify_unknown=None if dry_run else job.verify,
        stop_on=STOP_ON,
    )
    planned.sort(key=lambda change: str(change["key"]))
    return JobResult(job.name, summary, dry_run, planned)


# ---------------------------------------------------------------------------- CSV


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


class CsvCells(dict[str, str]):
    """One row: normalised header name -> stripped cell; ``headers`` gives the names as written."""

    headers: dict[str, str]

    def original(self, name: str) -> str:
        headers: dict[str, str] = getattr(self, "headers", {})
        return headers.get(name, name)


class _CsvSource(Generic[T]):
    """Rows of a CSV file as items, streamed; :meth:`validate` reads the whole file once first
    so that a bad row is reported before any write."""

    def __init__(self, path: str | os.PathLike[str], parse: Callable[[dict[str, str]], T]) -> None:
        self.path = os.fspath(path)
        self.parse = parse

    def _rows(self) -> Iterator[tuple[int, T]]:
        try:
            handle = open(self.path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InvalidInputError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise CsvRowError(self.path, 1, "the file has no header row")
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise CsvRowError(self.path, line, "more values than header columns")
                cells = CsvCells({_normalise(k): (v or "").strip() for k, v in row.items() if k is not None})
                cells.headers = {_normalise(k): k for k in row if k is not None}
                if not any(cells.values()):
                    continue
                try:
                    yield line, self.parse(cells)
                except (ValueError, InvalidInputError) as exc:
                    raise CsvRowError(self.path, line, str(exc)) from None

    def validate(self) -> int:
        """The number of items; raises :class:`CsvRowError` on the first bad row, or on a row
        whose ``key`` (its journal identity) an earlier row has with another ``change`` (what
        the write sets, for rows whose key does not say it all): the batch runs one item per
        key, so which of the two values would win must not be left to chance."""
        first_seen: dict[str, tuple[int, bytes]] = {}  # key -> (line, digest of its change)
        count = 0
        for line, item in self._rows():
            count += 1
            key, change = getattr(item, "key", None), getattr(item, "change", None)
            if not isinstance(key, str) or change is None:
                continue
            digest = hashlib.blake2b(repr(change).encode(), digest_size=16).digest()
            seen = first_seen.setdefault(key, (line, digest))
            if seen[1] != digest:
                raise CsvRowError(
                    self.path,
                    line,
                    f"{key} is on line {seen[0]} too, with other values: give it one row",
                )
        return count

    def __iter__(self) -> Iterator[T]:
        for _, item in self._rows():
            yield item


def read_csv(path: str | os.PathLike[str], parse: Callable[[dict[str, str]], T]) -> Iterable[T]:
    """The items of a CSV file (header names compared case- and punctuation-insensitively),
    checked whole before this returns; the items themselves are read lazily. A row may repeat
    an earlier row's ``key`` only with the same ``change`` (see the row types below)."""
    source = _CsvSource(path, parse)
    if source.validate() == 0:
        raise InvalidInputError(f"{os.path.basename(source.path)} has no rows")
    return source


def _required(cells: Mapping[str, str], name: str) -> str:
    value = cells.get(_normalise(name), "")
    if not value:
        raise ValueError(f"column {name!r} is empty or missing")
    return value


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


# ---------------------------------------------------------------------------- jobs


@attrs.frozen
class UserRow:
    """A row naming one user (``user``: id or e-mail)."""

    user: str

    @property
    def key(self) -> str:
        return self.user


def parse_user_row(cells: dict[str, str]) -> UserRow:
    return UserRow(_user_ref(_required(cells, "user")))


def force_reenrolment_job(
    client: MetalCloudClient,
    *,
    rows: Iterable[UserRow] | None = None,
    created_before: datetime | None = None,
    include_archived: bool = False,
) -> AdminJob[UserRow]:
    """Force a new authenticator at next login. From ``rows`` (every listed user), or, without
    rows, every user with 2FA whose authenticator was created before ``created_before``
    (required then). Users for whom it is already due are skipped."""
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

        async def apply() -> None:
            try:
                await client.users.force_2fa_reenrolment(uid, revision=config.revision)
            except ReenrolmentAlreadyPendingError:
                raise Skip("re-enrolment already due") from None

        return PlannedChange(
            key=row.user,
            action="force 2FA re-enrolment",
            user_id=uid,
            email=email or user.email,
            details={
                "authenticator_enabled": user.authenticator_enabled,
                "authenticator_created": created.isoformat() if created else None,
            },
            apply=apply,
        )

    async def verify(row: UserRow) -> bool | None:
        uid, _ = await _resolve(client, row.user)
        return (await client.users.get_config(uid)).authenticator_must_change

    items: Iterable[UserRow] | AsyncIterable[UserRow] = rows if rows is not None else listed()
    return AdminJob("force 2FA re-enrolment", items, lambda row: row.key, check, verify)


@attrs.frozen
class NewUserRow:
    """A user to create (no password: the server mails a link to set one)."""

    email: str
    display_name: str
    access_level: str = "user"
    account_id: int | None = None
    email_verified: bool | None = None

    @property
    def key(self) -> str:
        return self.email.lower()

    @property
    def change(self) -> NewUserRow:
        """What the creation sets: every column."""
        return self


def parse_new_user_row(cells: dict[str, str]) -> NewUserRow:
    email = _required(cells, "email")
    if "@" not in email or " " in email:
        raise ValueError(f"email is not an e-mail address: {email[:40]!r}")
    account = cells.get("accountid", "")
    if account and not _is_id(account):
        raise ValueError("account_id must be a number")
    verified = cells.get("emailverified", "")
    return NewUserRow(
        email=email,
        display_name=_required(cells, "display_name"),
        access_level=cells.get("accesslevel") or "user",
        account_id=int(account) if account else None,
        email_verified=_boolean(verified, "email_verified") if verified else None,
    )


def create_users_job(client: MetalCloudClient, rows: Iterable[NewUserRow]) -> AdminJob[NewUserRow]:
    """Create each user unless one with that e-mail exists (case-insensitive)."""

    async def check(row: NewUserRow) -> PlannedChange | Skip:
        if await client.users.find_by_email(row.email) is not None:
            return Skip("user exists")

        async def apply() -> None:
            try:
                await client.users.create(
                    row.email,
                    display_name=row.display_name,
                    access_level=row.access_level,
                    account_id=row.account_id,
                    email_verified=row.email_verified,
                )
            except EmailAlreadyInUseError:
                raise Skip("user exists") from None

        details = {
            "display_name": row.display_name,
            "access_level": row.access_level,
            "account_id": row.account_id,
        }
        return PlannedChange(row.key, "create user", None, row.email, details, apply)

    async def verify(row: NewUserRow) -> bool | None:
        return await client.users.find_by_email(row.email) is not None

    return AdminJob("create users", rows, lambda row: row.key, check, verify)


@attrs.frozen
class SshKeyRow:
    """A public key to add to a user."""

    user: str
    ssh_key: str

    @property
    def key(self) -> str:
        digest = hashlib.sha256(ssh_key_identity(self.ssh_key).encode()).hexdigest()[:16]
        return f"{self.user}:{digest}"


def parse_ssh_key_row(cells: dict[str, str]) -> SshKeyRow:
    key = _required(cells, "ssh_key")
    if len(key.split()) < 2:
        raise ValueError("ssh_key must be an OpenSSH public key line: '<type> <base64> [comment]'")
    return SshKeyRow(_user_ref(_required(cells, "user")), key)


def add_ssh_keys_job(client: MetalCloudClient, rows: Iterable[SshKeyRow]) -> AdminJob[SshKeyRow]:
    """Add each key unless the user has it already."""

    async def check(row: SshKeyRow) -> PlannedChange | Skip:
        uid, email = await _resolve(client, row.user)
        try:
            if await client.users.ssh_keys.find(uid, row.ssh_key) is not None:
                return Skip("key present")
        except NotFoundError:
            return Skip("no such user")

        async def apply() -> None:
            try:
                await client.users.ssh_keys.add(uid, row.ssh_key)
            except SshKeyAlreadyPresentError:
                raise Skip("key present") from None

        key_type, body = row.ssh_key.split()[:2]
        details = {"key_type": key_type, "key_end": body[-12:]}
        return PlannedChange(row.key, "add SSH key", uid, email, details, apply)

    async def verify(row: SshKeyRow) -> bool | None:
        uid, _ = await _resolve(client, row.user)
        return await client.users.ssh_keys.find(uid, row.ssh_key) is not None

    return AdminJob("add SSH keys", rows, lambda row: row.key, check, verify)


# Normalised column name (``driveMaxSizeMbytes`` and ``drive_max_size_mbytes`` alike) ->
# (attribute, declared type).
_LIMIT_TYPES = {_normalise(f.name): (f.name, str(f.type)) for f in attrs.fields(UserLimits)}


@attrs.frozen
class LimitsRow:
    """Limits to set for a user (only the columns with a value)."""

    user: str
    limits: UserLimits

    @property
    def key(self) -> str:
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


def parse_limits_row(cells: dict[str, str]) -> LimitsRow:
    user = _user_ref(_required(cells, "user"))
    values: dict[str, Any] = {}
    for column, text in cells.items():
        if column == "user" or not text:
            continue
        known = _LIMIT_TYPES.get(column)
        if known is None:
            written = cells.original(column) if isinstance(cells, CsvCells) else column
            raise ValueError(f"unknown limit column {written!r}")
        name, kind = known
        values[name] = _limit_value(text, kind, name)
    if not values:
        raise ValueError("no limit to set in this row")
    return LimitsRow(user, UserLimits(**values))


def _wanted(limits: UserLimits) -> dict[str, Any]:
    return {k: v for k, v in attrs.asdict(limits).items() if v is not None}


def set_limits_job(client: MetalCloudClient, rows: Iterable[LimitsRow]) -> AdminJob[LimitsRow]:
    """Set each row's limits unless they already have those values."""

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

        async def apply() -> None:
            try:
                await client.users.limits.set(uid, row.limits)
            except ConflictError:
                raise Skip("limits already set") from None

        details = {"changes": {k: {"from": current.get(k), "to": v} for k, v in changes.items()}}
        return PlannedChange(row.key, "set limits", uid, email, details, apply)

    async def verify(row: LimitsRow) -> bool | None:
        uid, _ = await _resolve(client, row.user)
        current = _wanted(await client.users.limits.get(uid))
        return all(current.get(k) == v for k, v in _wanted(row.limits).items())

    return AdminJob("set limits", rows, lambda row: row.key, check, verify)
