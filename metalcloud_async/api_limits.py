"""``client.users.limits``: a user's resource limits (current, disabled, default) and changing them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfa_common.client import RequestOptions, structure

from ._results import change_user
from .models import UserLimits, UserLimitsDisabled, converter
from .protocol import LATEST, Revision, user_resource

if TYPE_CHECKING:
    from .client import MetalCloudClient

__all__ = ["UserLimitsAPI"]


class UserLimitsAPI:
    """``/api/v2/users/{id}/limits``, ``disabled-limits``, ``default-limits`` and
    ``actions/change-limits``."""

    def __init__(self, client: MetalCloudClient) -> None:
        self._c = client

    async def get(self, user_id: int, *, options: RequestOptions | None = None) -> UserLimits:
        """The user's current limits."""
        return await self._read(user_id, "limits", options)

    async def default(self, user_id: int, *, options: RequestOptions | None = None) -> UserLimits:
        """The limits a user gets by default."""
        return await self._read(user_id, "default-limits", options)

    async def disabled(self, user_id: int, *, options: RequestOptions | None = None) -> UserLimitsDisabled:
        """The limits disabled for lack of infrastructure (field -> reason; empty: none)."""
        body, response = await self._c._json(
            "GET", user_resource(user_id, "disabled-limits"), options=options
        )
        return structure(converter, body, UserLimitsDisabled, response)

    async def _read(self, user_id: int, what: str, options: RequestOptions | None) -> UserLimits:
        body, response = await self._c._json("GET", user_resource(user_id, what), options=options)
        return structure(converter, body, UserLimits, response)

    async def set(
        self,
        user_id: int,
        changes: UserLimits,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> UserLimits:
        """``PATCH .../actions/change-limits`` with the fields set in ``changes`` (the others are
        left alone); ``If-Match`` carries the user's revision (read first by default). The fake
        answers 409 when nothing would change. Returns the limits after the change."""
        return await change_user(
            self._c,
            user_id,
            "change-limits",
            converter.unstructure(changes),
            UserLimits,
            nothing="no limit to change",
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
            method="PATCH",
        )
