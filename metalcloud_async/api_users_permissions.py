"""``client.users.permissions``: a user's role and resource permissions, and changing them."""

from __future__ import annotations

from mfa_common.options import RequestOptions

from ._base import MetalCloudAPIGroup
from .models import (
    AdminPasswordRevealPermissions,
    SpecialPermissions,
    UpdateUserPermissions,
    UserPermissions,
    converter,
)
from .protocol import LATEST, Revision, user_resource

__all__ = ["UserPermissionsAPI"]


class UserPermissionsAPI(MetalCloudAPIGroup):
    """``client.users.permissions``: ``GET /api/v2/users/{id}/permissions`` and
    ``POST .../actions/change-resource-permissions``."""

    async def get(self, user_id: int, *, options: RequestOptions | None = None) -> UserPermissions:
        """The user's role and resource permissions.

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._get(user_resource(user_id, "permissions"), UserPermissions, options=options)

    async def change(
        self,
        user_id: int,
        *,
        admin_password_reveal: AdminPasswordRevealPermissions | None = None,
        special: SpecialPermissions | None = None,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> UserPermissions:
        """Change resource permissions (only the flags that are set).

        Args:
            user_id: The user's id.
            admin_password_reveal: Who may reveal administrator passwords.
            special: The special permissions.
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The permissions after the change.
        """
        changes = UpdateUserPermissions(
            admin_password_reveal_permissions=admin_password_reveal, special_permissions=special
        )
        return await self._change_user(
            user_id,
            "change-resource-permissions",
            converter.unstructure(changes),
            UserPermissions,
            nothing="no permission to change",
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
        )
