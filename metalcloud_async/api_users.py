"""``client.users``: user administration (``/api/v2/users``): listing, reading, creation,
configuration (and forced 2FA re-enrolment), meta, account moves, suspension, archiving and
their reverses. The sub-groups are ``api_users_limits``, ``api_users_delegates``,
``api_users_permissions`` and ``api_users_ssh_keys``.

A configuration's ``revision`` is its user's (one stored row on the server):
:meth:`UsersAPI.update_config` reads the user's revision and sends it as ``If-Match``, as the
official ``metalcloud-cli`` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from mfa_common.errors import ConflictError, InvalidInputError
from mfa_common.options import RequestOptions
from mfa_common.requestor import Requestor
from mfa_common.secret import Secret, wrap

from . import _constants as C
from ._base import MetalCloudAPIGroup
from .api_users_delegates import UserDelegatesAPI
from .api_users_limits import UserLimitsAPI
from .api_users_permissions import UserPermissionsAPI
from .api_users_ssh_keys import UserSshKeysAPI
from .errors import EmailAlreadyInUseError, EmailAlreadyVerifiedError, ReenrolmentAlreadyPendingError, refined
from .models import (
    ChangeUserAccount,
    CreateUser,
    GenericGUISettings,
    ResendUserVerificationEmail,
    SuspendReasonType,
    UpdateUser,
    User,
    UserConfiguration,
    UserInfo,
    UserMeta,
    UserPaginatedList,
    UserSuspend,
    UserSuspendReason,
    UserSuspendReasonList,
    converter,
)
from .protocol import (
    LATEST,
    FilterValue,
    ListQuery,
    Revision,
    check_id,
    check_revision,
    if_match_value,
    next_page,
    user_resource,
)

__all__ = ["UsersAPI"]

P = C.API_PREFIX


class UsersAPI(MetalCloudAPIGroup):
    """``client.users``: user administration (``/api/v2/users``); needs an administrator's credentials.

    Listing, reading, creation, configuration (and forced 2FA re-enrolment), meta, account
    moves, suspension and archiving; the sub-groups ``limits``, ``delegates``, ``permissions``
    and ``ssh_keys`` have their own modules (``api_users_*.py``).
    """

    def __init__(self, requestor: Requestor) -> None:
        super().__init__(requestor)
        self.limits = UserLimitsAPI(requestor)
        self.delegates = UserDelegatesAPI(requestor)
        self.permissions = UserPermissionsAPI(requestor)
        self.ssh_keys = UserSshKeysAPI(requestor)

    async def list_page(
        self, query: ListQuery, *, options: RequestOptions | None = None
    ) -> UserPaginatedList:
        """One page of ``GET /api/v2/users``.

        Args:
            query: The page, its size, filters, sort and search.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._get(f"{P}/users", UserPaginatedList, params=query.params(), options=options)

    async def list(
        self,
        *,
        filters: Mapping[str, FilterValue] | None = None,
        sort_by: Sequence[str] = ("id:ASC",),
        search: str | None = None,
        search_by: Sequence[str] = (),
        page_size: int = C.ITERATOR_PAGE_SIZE,
        start_page: int = 1,
        options: RequestOptions | None = None,
    ) -> AsyncIterator[UserInfo]:
        """Every matching user, fetching pages lazily.

        One request per ``page_size`` users, at most 100. A stable ``sort_by`` keeps pages
        consistent.

        Args:
            filters: Maps a field (``archived``, ``accessLevel``, ``email``, ...) to a value
                (``$eq``), an operation string (``filter_in([...])``) or a list of either.
            sort_by: ``field:ASC`` or ``field:DESC`` terms (default ``id:ASC``).
            search: Text searched for in the ``search_by`` fields.
            search_by: The fields ``search`` looks in.
            page_size: Users per request (at most 100).
            start_page: The first page to fetch.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        query = ListQuery(
            page=start_page,
            limit=page_size,
            filters=dict(filters or {}),
            sort_by=tuple(sort_by),
            search=search,
            search_by=tuple(search_by),
        )
        page: int | None = start_page
        while page is not None:
            result = await self.list_page(query.with_page(page), options=options)
            for item in result.data:
                yield item
            page = next_page(
                page=page,
                limit=query.page_size,
                received=len(result.data),
                total_pages=result.meta.total_pages,
                total_items=result.meta.total_items,
            )

    async def get(
        self, user_id: int, *, recursion: int | None = None, options: RequestOptions | None = None
    ) -> User:
        """``GET /api/v2/users/{id}`` with ``revision`` and ``ETag``.

        Args:
            user_id: The user's id.
            recursion: How deep the server expands related objects.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._get_user(user_resource(user_id), recursion=recursion, options=options)

    async def suspend(
        self,
        user_id: int,
        *,
        public_comment: str,
        reason: SuspendReasonType | str = SuspendReasonType.CUSTOM,
        private_comment: str | None = None,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> UserSuspendReason:
        """``POST /api/v2/users/{id}/actions/suspend``.

        Args:
            user_id: The user's id.
            public_comment: The reason the user sees.
            reason: ``unpaid`` or ``custom``.
            private_comment: The reason only administrators see.
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The suspension.
        """
        reason_value = reason.value if isinstance(reason, SuspendReasonType) else reason
        if reason_value not in ("unpaid", "custom"):
            raise InvalidInputError("reason must be 'unpaid' or 'custom'")
        payload = converter.unstructure(
            UserSuspend(
                suspend_reason=reason_value,
                suspend_reason_public_comment=public_comment,
                suspend_reason_private_comment=private_comment,
            )
        )
        response = await self._write_user(
            user_id,
            "actions",
            "suspend",
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
            json=payload,
        )
        return self._decode(response, UserSuspendReason)

    async def unsuspend(
        self,
        user_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> None:
        """``POST /api/v2/users/{id}/actions/unsuspend``.

        Args:
            user_id: The user's id.
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        await self._write_user(
            user_id, "actions", "unsuspend", revision=revision, retry_on_stale=retry_on_stale, options=options
        )

    async def archive(
        self,
        user_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/users/{id}/actions/archive``.

        Args:
            user_id: The user's id.
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The updated user (new revision, ETag).
        """
        response = await self._write_user(
            user_id, "actions", "archive", revision=revision, retry_on_stale=retry_on_stale, options=options
        )
        return self._user(response)

    async def unarchive(
        self,
        user_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/users/{id}/actions/unarchive``.

        Args:
            user_id: The user's id.
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The updated user.
        """
        response = await self._write_user(
            user_id, "actions", "unarchive", revision=revision, retry_on_stale=retry_on_stale, options=options
        )
        return self._user(response)

    async def create(
        self,
        email: str,
        *,
        display_name: str,
        access_level: str = "user",
        password: str | Secret[str] | None = None,
        email_verified: bool | None = None,
        create_with_account: bool | None = None,
        account_id: int | None = None,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/users`` (201).

        Not retried (a replay could only meet the 409): a lost answer is an unknown outcome,
        settled with :meth:`find_by_email`.

        Args:
            email: The new user's address.
            display_name: The name shown.
            access_level: ``user``, ``admin`` or ``root``.
            password: The password; without it the user is mailed a link to set one.
            email_verified: Mark the address as verified.
            create_with_account: Create an account for the user too.
            account_id: The account the user joins.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The new user.

        Raises:
            EmailAlreadyInUseError: The address exists (409).
            NotFoundError: An unknown ``account_id`` (404).
            BadRequestError: Invalid fields (400).
        """
        if not isinstance(email, str) or "@" not in email:
            raise InvalidInputError("email must be an e-mail address")
        if not display_name:
            raise InvalidInputError("display_name is empty")
        if account_id is not None:
            check_id(account_id, "account_id")
        payload = converter.unstructure(
            CreateUser(
                display_name=display_name,
                email=email,
                access_level=access_level,
                password=wrap(password) if password is not None else None,
                email_verified=email_verified,
                create_with_account=create_with_account,
                account_id=account_id,
            )
        )
        with refined(ConflictError, EmailAlreadyInUseError):
            response = await self._requestor.request("POST", f"{P}/users", json=payload, options=options)
        return self._user(response)

    async def find_by_email(self, email: str, *, options: RequestOptions | None = None) -> UserInfo | None:
        """The user with this e-mail address (compared case-insensitively), or None.

        Uses the listing's ``search`` on ``email`` (case-insensitive on nestjs-paginate) rather
        than the case-sensitive ``filter.email``, then keeps only an exact match.

        Args:
            email: The address.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        wanted = email.strip().lower()
        async for info in self.list(search=email.strip(), search_by=["email"], options=options):
            if info.email.lower() == wanted:
                return info
        return None

    async def get_config(self, user_id: int, *, options: RequestOptions | None = None) -> UserConfiguration:
        """``GET /api/v2/users/{id}/config``; its ``revision`` is the user's.

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._get(user_resource(user_id, "config"), UserConfiguration, options=options)

    async def update_config(
        self,
        user_id: int,
        changes: UpdateUser,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> UserConfiguration:
        """``PATCH /api/v2/users/{id}/config`` with the fields set in ``changes``.

        Args:
            user_id: The user's id.
            changes: The fields to change (the others are not sent).
            revision: The user's revision, sent as ``If-Match`` (read from
                ``GET /api/v2/users/{id}`` by default, as the official CLI does; a
                configuration's ``revision`` is the same number).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The new configuration.
        """
        check_revision(revision)
        payload = converter.unstructure(changes)
        if not payload:
            raise InvalidInputError("no configuration field to change")
        response = await self._write_user(
            user_id,
            "config",
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
            json=payload,
            method="PATCH",
        )
        return self._decode(response, UserConfiguration)

    async def force_2fa_reenrolment(
        self,
        user_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = True,
        options: RequestOptions | None = None,
    ) -> UserConfiguration:
        """Make the user enrol a new authenticator at the next login.

        Sends ``PATCH .../config {"authenticatorMustChange": true}``. An administrator cannot
        switch a user's 2FA off on MetalCloud; this is how a lost or compromised authenticator is
        replaced. The user's next password login gets a session good only for enrolling (see
        :meth:`~metalcloud_async.api_session.SessionAPI.complete_reenrolment`).

        Args:
            user_id: The user's id.
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: Re-read a stale revision once (the default): the change is absolute,
                so sending it on the current revision is what the caller meant.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            ReenrolmentAlreadyPendingError: It is already due (409).
        """
        with refined(ConflictError, ReenrolmentAlreadyPendingError):
            return await self.update_config(
                user_id,
                UpdateUser(authenticator_must_change=True),
                revision=revision,
                retry_on_stale=retry_on_stale,
                options=options,
            )

    async def update_meta(
        self,
        user_id: int,
        gui_settings: GenericGUISettings,
        *,
        revision: int | str | None = None,
        options: RequestOptions | None = None,
    ) -> UserMeta:
        """``PATCH /api/v2/users/{id}/meta``.

        Args:
            user_id: The user's id.
            gui_settings: The user's GUI settings.
            revision: The user's revision; the spec declares no ``If-Match`` here (yet lists
                412/428), so none is sent unless it is given.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        headers = {"If-Match": if_match_value(revision)} if revision is not None else None
        payload = converter.unstructure(UserMeta(gui_settings=gui_settings))
        response = await self._requestor.request(
            "PATCH", user_resource(user_id, "meta"), json=payload, headers=headers, options=options
        )
        return self._decode(response, UserMeta)

    async def change_account(
        self,
        user_id: int,
        new_account_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/users/{id}/actions/change-account``: move the user to another account.

        Args:
            user_id: The user's id.
            new_account_id: The account to move to (409 when the user is there already, 404 for
                an unknown account).
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        check_id(new_account_id, "new_account_id")
        response = await self._write_user(
            user_id,
            "actions",
            "change-account",
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
            json=converter.unstructure(ChangeUserAccount(new_account_id=new_account_id)),
        )
        return self._user(response)

    async def resend_email_verification(
        self, user_id: int, *, redirect_url: str | None = None, options: RequestOptions | None = None
    ) -> User:
        """``POST /api/v2/users/{id}/actions/resend-email-verification``.

        Args:
            user_id: The user's id.
            redirect_url: Where the link in the mail leads.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            EmailAlreadyVerifiedError: There is nothing to verify (409).
        """
        payload: Any = converter.unstructure(ResendUserVerificationEmail(redirect_url=redirect_url))
        with refined(ConflictError, EmailAlreadyVerifiedError):
            response = await self._requestor.request(
                "POST",
                user_resource(user_id, "actions", "resend-email-verification"),
                json=payload,
                options=options,
                idempotent=False,
            )
        return self._user(response)

    async def suspend_reasons(
        self, user_id: int, *, options: RequestOptions | None = None
    ) -> AsyncIterator[UserSuspendReason]:
        """``GET /api/v2/users/{id}/suspend-reasons``: the user's suspensions, oldest first.

        Fetched when iteration starts.

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        reasons = await self._get(
            user_resource(user_id, "suspend-reasons"), UserSuspendReasonList, options=options
        )
        for item in reasons.data:
            yield item
