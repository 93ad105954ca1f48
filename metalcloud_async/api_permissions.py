"""``client.users.permissions``: a user's role and resource permissions, and changing them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfa_common.client import RequestOptions, parse_json_body, structure
from mfa_common.errors import InvalidInputError

from ._results import check_revision, user_revision_reader
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
        check_revision(revision)
        payload = converter.unstructure(
            UpdateUserPermissions(
                admin_password_reveal_permissions=admin_password_reveal, special_permissions=special
            )
        )
        if not payload:
            raise InvalidInputError("no permission to change")
        response = await self._c._write(
            user_resource(user_id, "actions", "change-resource-permissions"),
            revision=revision,
            read_revision=user_revision_reader(self._c, user_id, options),
            retry_on_stale=retry_on_stale,
            options=options,
            json=payload,
        )
        return structure(converter, parse_json_body(response), UserPermissions, response)
