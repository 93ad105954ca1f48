"""``client.users.delegates``: who acts on behalf of a user (its child delegates) and on whose
behalf it acts (its parent delegates). ``add(user, delegate)`` makes ``delegate`` a child
delegate of ``user`` (the direction is UNCONFIRMED on the real server; the fake's choice)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from mfa_common.errors import ConflictError
from mfa_common.options import RequestOptions

from ._base import MetalCloudAPIGroup
from .errors import DelegateAlreadyAddedError, refined
from .models import User, UserInfo, UserList
from .protocol import check_id, user_resource

__all__ = ["UserDelegatesAPI"]


class UserDelegatesAPI(MetalCloudAPIGroup):
    """``client.users.delegates``: ``parent-delegates``, ``child-delegates``,
    ``actions/add-delegate/{id}`` and ``actions/remove-delegate/{id}``."""

    async def parents(
        self, user_id: int, *, options: RequestOptions | None = None
    ) -> AsyncIterator[UserInfo]:
        """The users ``user_id`` is a delegate of (fetched when iteration starts).

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        async for item in self._list(user_id, "parent-delegates", options):
            yield item

    async def children(
        self, user_id: int, *, options: RequestOptions | None = None
    ) -> AsyncIterator[UserInfo]:
        """The delegates of ``user_id``.

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        async for item in self._list(user_id, "child-delegates", options):
            yield item

    async def _list(self, user_id: int, what: str, options: RequestOptions | None) -> AsyncIterator[UserInfo]:
        listing = await self._get(user_resource(user_id, what), UserList, options=options)
        for item in listing.data:
            yield item

    async def add(self, user_id: int, delegate_id: int, *, options: RequestOptions | None = None) -> User:
        """Make ``delegate_id`` a delegate of ``user_id``.

        Args:
            user_id: The user's id.
            delegate_id: The delegate's user id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            DelegateAlreadyAddedError: It is one already (409).
            NotFoundError: An unknown user (404).
            BadRequestError: A user delegating to itself (400).
        """
        check_id(delegate_id, "delegate_id")
        with refined(ConflictError, DelegateAlreadyAddedError):
            response = await self._requestor.request(
                "POST", user_resource(user_id, "actions", "add-delegate", delegate_id), options=options
            )
        return self._user(response)

    async def remove(self, user_id: int, delegate_id: int, *, options: RequestOptions | None = None) -> User:
        """Remove the delegate.

        Args:
            user_id: The user's id.
            delegate_id: The delegate's user id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            NotFoundError: It is not a delegate.
        """
        check_id(delegate_id, "delegate_id")
        response = await self._requestor.request(
            "POST", user_resource(user_id, "actions", "remove-delegate", delegate_id), options=options
        )
        return self._user(response)
