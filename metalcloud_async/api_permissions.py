"""``client.users.permissions``: a user's role and resource permissions, and changing them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfa_common.client import RequestOptions, structure

from ._results import change_user
from .models import (
    AdminPasswordRevealPermissions,
    SpecialPermissions,
    UpdateUserPermissions,
    UserPermissions,
    converter,
)
from .protocol import LATEST, Revision, user_resource

if TYPE_CHECKING:
    from .client import MetalCloudClient

__all__ = ["UserPermissionsAPI"]


class UserPermissionsAPI:
    """``GET /api/v2/users/{id}/permissions`` and ``POST .../actions/change-resource-permissions``."""

    def __init__(self, client: MetalCloudClient) -> None:
        self._c = client

    async def get(self, user_id: int, *, options: RequestOptions | None = None) -> UserPermissions:
        body, response = await self._c._json("GET", user_resource(user_id, "permissions"), options=options)
        return structure(converter, body, UserPermissions, response)

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
        """Change resource permissions (only the flags that are set); ``If-Match`` carries the
        user's revision. Returns the permissions after the change."""
        changes = UpdateUserPermissions(
            admin_password_reveal_permissions=admin_password_reveal, special_permissions=special
        )
        return await change_user(
            self._c,
            user_id,
            "change-resource-permissions",
            converter.unstructure(changes),
            UserPermissions,
            nothing="no permission to change",
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
        )
