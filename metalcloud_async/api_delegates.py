"""``client.users.delegates``: who acts on behalf of a user (its child delegates) and on whose
behalf it acts (its parent delegates). ``add(user, delegate)`` makes ``delegate`` a child
delegate of ``user`` (the direction is UNCONFIRMED on the real server; the fake's choice)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from mfa_common.client import RequestOptions, structure
from mfa_common.errors import ConflictError

from ._results import refined, user_from
from .errors import DelegateAlreadyAddedError
from .models import User, UserInfo, UserList, converter
from .protocol import check_id, user_resource

if TYPE_CHECKING:
    from .client import MetalCloudClient

__all__ = ["UserDelegatesAPI"]


class UserDelegatesAPI:
    """``parent-delegates``, ``child-delegates``, ``actions/add-delegate/{id}`` and
    ``actions/remove-delegate/{id}``."""

    def __init__(self, client: MetalCloudClient) -> None:
        self._c = client

    async def parents(
        self, user_id: int, *, options: RequestOptions | None = None
    ) -> AsyncIterator[UserInfo]:
        """The users ``user_id`` is a delegate of (fetched when iteration starts)."""
        async for item in self._list(user_id, "parent-delegates", options):
            yield item

    async def children(
        self, user_id: int, *, options: RequestOptions | None = None
    ) -> AsyncIterator[UserInfo]:
        """The delegates of ``user_id``."""
        async for item in self._list(user_id, "child-delegates", options):
            yield item

    async def _list(self, user_id: int, what: str, options: RequestOptions | None) -> AsyncIterator[UserInfo]:
        body, response = await self._c._json("GET", user_resource(user_id, what), options=options)
        for item in structure(converter, body, UserList, response).data:
            yield item

    async def add(self, user_id: int, delegate_id: int, *, options: RequestOptions | None = None) -> User:
        """Make ``delegate_id`` a delegate of ``user_id``. Raises
        :class:`~metalcloud_async.errors.DelegateAlreadyAddedError` (409), ``NotFoundError``
        (404, unknown user) or ``BadRequestError`` (400, a user delegating to itself)."""
        check_id(delegate_id, "delegate_id")
        with refined(ConflictError, DelegateAlreadyAddedError):
            body, response = await self._c._json(
                "POST", user_resource(user_id, "actions", "add-delegate", delegate_id), options=options
            )
        return user_from(body, response)

    async def remove(self, user_id: int, delegate_id: int, *, options: RequestOptions | None = None) -> User:
        """Remove the delegate (``NotFoundError`` when it is not one)."""
        check_id(delegate_id, "delegate_id")
        body, response = await self._c._json(
            "POST", user_resource(user_id, "actions", "remove-delegate", delegate_id), options=options
        )
        return user_from(body, response)
