"""UsersAPI: the user listing and metadata that administration batch jobs need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfa_common.errors import ResponseDecodeError
from mfa_common.options import RequestOptions
from mfa_common.wire import parse_json_body, path_segment, structure

from ._base import QuatrixAPIGroup

if TYPE_CHECKING:
    # The models load with the first call (see quatrix_async/__init__.py).
    from .models import UserResp

__all__ = ["UsersAPI"]


class UsersAPI(QuatrixAPIGroup):
    """``client.users``: ``GET /user`` and ``GET /user/metadata/{id}``."""

    async def list(self, *, options: RequestOptions | None = None) -> list[UserResp]:
        """``GET /user``: every user of the account (the API has no paging).

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import UserResp, converter

        response = await self._requestor.request("GET", "user", options=options)
        data = parse_json_body(response)
        if not isinstance(data, list):
            raise ResponseDecodeError("GET /user: expected a JSON array", status_code=response.status_code)
        return [structure(converter, item, UserResp, response) for item in data]

    async def metadata(self, user_id: str, *, options: RequestOptions | None = None) -> UserResp:
        """``GET /user/metadata/{id}``: one user.

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import UserResp

        response = await self._requestor.request(
            "GET", f"user/metadata/{path_segment(user_id, 'user_id')}", options=options
        )
        return self._decode(response, UserResp)
