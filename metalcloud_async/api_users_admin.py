"""User administration beyond listing and suspension: create a user, read and update its
configuration and meta, move it to another account, resend its e-mail verification, read its
suspension history, and force it to enrol a new authenticator.

These methods are part of ``client.users`` (:class:`~metalcloud_async.client.UsersAPI`).
A configuration's ``revision`` is its user's (one stored row on the server):
:meth:`UsersAdminMixin.update_config` reads the user's revision and sends it as ``If-Match``, as
the official ``metalcloud-cli`` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mfa_common.client import RequestOptions, parse_json_body, structure
from mfa_common.errors import ConflictError, InvalidInputError
from mfa_common.secret import Secret, wrap

from ._results import check_revision, refined, user_from, user_revision_reader
from .errors import EmailAlreadyInUseError, EmailAlreadyVerifiedError, ReenrolmentAlreadyPendingError
from .models import (
    ChangeUserAccount,
    CreateUser,
    GenericGUISettings,
    ResendUserVerificationEmail,
    UpdateUser,
    User,
    UserConfiguration,
    UserInfo,
    UserMeta,
    UserSuspendReason,
    UserSuspendReasonList,
    converter,
)
from .protocol import LATEST, Revision, check_id, if_match_value, user_resource

if TYPE_CHECKING:
    from .client import MetalCloudClient

__all__ = ["UsersAdminMixin"]

P = "/api/v2"


class UsersAdminMixin:
    """The administration calls of ``client.users``."""

    _c: MetalCloudClient

    def _reader(self, user_id: int, options: RequestOptions | None) -> Callable[[], Awaitable[int]]:
        return user_revision_reader(self._c, user_id, options)

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
        """``POST /api/v2/users`` (201). Without ``password`` the user is mailed a link to set
        one. Raises :class:`~metalcloud_async.errors.EmailAlreadyInUseError` (409) when the
        address exists, ``NotFoundError`` (404) for an unknown ``account_id``, ``BadRequestError``
        (400) for invalid fields. Not retried (a replay could only meet the 409): a lost answer
        is an unknown outcome, settled with :meth:`find_by_email`."""
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
            body, response = await self._c._json("POST", f"{P}/users", json=payload, options=options)
        return user_from(body, response)

    async def find_by_email(self, email: str, *, options: RequestOptions | None = None) -> UserInfo | None:
        """The user with this e-mail address (compared case-insensitively), or None. Uses the
        listing's ``search`` on ``email`` (case-insensitive on nestjs-paginate) rather than the
        case-sensitive ``filter.email``, then keeps only an exact match."""
        wanted = email.strip().lower()
        async for info in self._c.users.list(search=email.strip(), search_by=["email"], options=options):
            if info.email.lower() == wanted:
                return info
        return None

    async def get_config(self, user_id: int, *, options: RequestOptions | None = None) -> UserConfiguration:
        """``GET /api/v2/users/{id}/config``; its ``revision`` is the user's."""
        body, response = await self._c._json("GET", user_resource(user_id, "config"), options=options)
        return structure(converter, body, UserConfiguration, response)

    async def update_config(
        self,
        user_id: int,
        changes: UpdateUser,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> UserConfiguration:
        """``PATCH /api/v2/users/{id}/config`` with the fields set in ``changes``; ``revision``
        is the user's (read from ``GET /api/v2/users/{id}`` by default, as the official CLI
        does; a configuration's ``revision`` is the same number). Returns the new configuration."""
        check_revision(revision)
        payload = converter.unstructure(changes)
        if not payload:
            raise InvalidInputError("no configuration field to change")
        response = await self._c._write(
            user_resource(user_id, "config"),
            revision=revision,
            read_revision=self._reader(user_id, options),
            retry_on_stale=retry_on_stale,
            options=options,
            json=payload,
            method="PATCH",
        )
        return structure(converter, parse_json_body(response), UserConfiguration, response)

    async def force_2fa_reenrolment(
        self,
        user_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = True,
        options: RequestOptions | None = None,
    ) -> UserConfiguration:
        """Make the user enrol a new authenticator at the next login
        (``PATCH .../config {"authenticatorMustChange": true}``).

        An administrator cannot switch a user's 2FA off on MetalCloud; this is how a lost or
        compromised authenticator is replaced. The user's next password login gets a session
        good only for enrolling (see :meth:`~metalcloud_async.client.SessionAPI.complete_reenrolment`).
        Raises :class:`~metalcloud_async.errors.ReenrolmentAlreadyPendingError` (409) when it is
        already due. A stale revision is re-read once (``retry_on_stale``): the change is
        absolute, so sending it on the current revision is what the caller meant.
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
        """``PATCH /api/v2/users/{id}/meta``. The spec declares no ``If-Match`` here (yet lists
        412/428), so none is sent unless ``revision`` (the user's) is given."""
        headers = {"If-Match": if_match_value(revision)} if revision is not None else None
        payload = converter.unstructure(UserMeta(gui_settings=gui_settings))
        body, response = await self._c._json(
            "PATCH", user_resource(user_id, "meta"), json=payload, headers=headers, options=options
        )
        return structure(converter, body, UserMeta, response)

    async def change_account(
        self,
        user_id: int,
        new_account_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/users/{id}/actions/change-account``: move the user to another account
        (409 when it is there already, 404 for an unknown account)."""
        check_revision(revision)
        check_id(new_account_id, "new_account_id")
        response = await self._c._write(
            user_resource(user_id, "actions", "change-account"),
            revision=revision,
            read_revision=self._reader(user_id, options),
            retry_on_stale=retry_on_stale,
            options=options,
            json=converter.unstructure(ChangeUserAccount(new_account_id=new_account_id)),
        )
        return user_from(parse_json_body(response), response)

    async def resend_email_verification(
        self, user_id: int, *, redirect_url: str | None = None, options: RequestOptions | None = None
    ) -> User:
        """``POST /api/v2/users/{id}/actions/resend-email-verification``. Raises
        :class:`~metalcloud_async.errors.EmailAlreadyVerifiedError` (409) when there is nothing
        to verify."""
        payload: Any = converter.unstructure(ResendUserVerificationEmail(redirect_url=redirect_url))
        with refined(ConflictError, EmailAlreadyVerifiedError):
            body, response = await self._c._json(
                "POST",
                user_resource(user_id, "actions", "resend-email-verification"),
                json=payload,
                options=options,
                idempotent=False,
            )
        return user_from(body, response)

    async def suspend_reasons(
        self, user_id: int, *, options: RequestOptions | None = None
    ) -> AsyncIterator[UserSuspendReason]:
        """``GET /api/v2/users/{id}/suspend-reasons``: the user's suspensions, oldest first
        (fetched when iteration starts)."""
        body, response = await self._c._json(
            "GET", user_resource(user_id, "suspend-reasons"), options=options
        )
        for item in structure(converter, body, UserSuspendReasonList, response).data:
            yield item
