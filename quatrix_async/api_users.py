"""UsersAPI: the user listing and metadata that administration batch jobs need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfa_common.client import RequestOptions, parse_json_body, path_segment, structure
from mfa_common.errors import ResponseDecodeError

from ._base import ApiGroup, decode

if TYPE_CHECKING:
    # The models load with the first call (see quatrix_async/__init__.py).
    from .models import UserResp

__all__ = ["UsersAPI"]


class UsersAPI(ApiGroup):
    """``client.users``: ``GET /user`` and ``GET /user/metadata/{id}``."""

    async def list(self, *, options: RequestOptions | None = None) -> list[UserResp]:
        """``GET /user``: every user of the account (the API has no paging)."""
        from .models import UserResp, converter

        response = await self._client.request("GET", "user", options=options)
        data = parse_json_body(response)
        if not isinstance(data, list):
            raise ResponseDecodeError("GET /user: expected a JSON array", status_code=response.status_code)
        return [structure(converter, item, UserResp, response) for item in data]

    async def metadata(self, user_id: str, *, options: RequestOptions | None = None) -> UserResp:
        """``GET /user/metadata/{id}``: one user."""
        from .models import UserResp

        response = await self._client.request(
            "GET", f"user/metadata/{path_segment(user_id, 'user_id')}", options=options
        )
        return decode(response, UserResp)
