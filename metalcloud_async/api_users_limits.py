"""``client.users.limits``: a user's resource limits (current, disabled, default) and changing them."""

from __future__ import annotations

from mfa_common.options import RequestOptions

from ._base import MetalCloudAPIGroup
from .models import UserLimits, UserLimitsDisabled, converter
from .protocol import LATEST, Revision, user_resource

__all__ = ["UserLimitsAPI"]


class UserLimitsAPI(MetalCloudAPIGroup):
    """``client.users.limits``: ``/api/v2/users/{id}/limits``, ``disabled-limits``,
    ``default-limits`` and ``actions/change-limits``."""

    async def get(self, user_id: int, *, options: RequestOptions | None = None) -> UserLimits:
        """The user's current limits.

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._read(user_id, "limits", options)

    async def default(self, user_id: int, *, options: RequestOptions | None = None) -> UserLimits:
        """The limits a user gets by default.

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._read(user_id, "default-limits", options)

    async def disabled(self, user_id: int, *, options: RequestOptions | None = None) -> UserLimitsDisabled:
        """The limits disabled for lack of infrastructure (field -> reason; empty: none).

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._get(user_resource(user_id, "disabled-limits"), UserLimitsDisabled, options=options)

    async def _read(self, user_id: int, what: str, options: RequestOptions | None) -> UserLimits:
        return await self._get(user_resource(user_id, what), UserLimits, options=options)

    async def set(
        self,
        user_id: int,
        changes: UserLimits,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> UserLimits:
        """``PATCH .../actions/change-limits`` with the fields set in ``changes``.

        The others are left alone. The fake answers 409 when nothing would change.

        Args:
            user_id: The user's id.
            changes: The limits to change.
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The limits after the change.
        """
        return await self._change_user(
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
