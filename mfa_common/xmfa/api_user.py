"""``client.user``: the logged-in user (``GET /api/auth/user``)."""

from __future__ import annotations

from ..options import RequestOptions
from ._base import XMfaAPIGroup
from .models import UserAuth
from .protocol import parse_user_auth

__all__ = ["UserAPI"]


class UserAPI(XMfaAPIGroup):
    """``client.user``: the logged-in user."""

    async def get(self, *, options: RequestOptions | None = None) -> UserAuth:
        """``GET /api/auth/user``: the logged-in user, with a freshly minted JWT.

        The new JWT's ``mfa`` claim is current (CONFIRMED: the server's handler mints one on
        every call). ``mfa.enable`` and ``mfa.disable`` return no JWT and leave the old one valid
        (CONFIRMED), so its ``mfa`` claim goes stale; a client that holds its own session token
        (no ``auth=`` backend) adopts the fresh one here. An auth backend refreshes through this
        call itself.

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        response = await self._requestor.request("GET", self._paths.current_user, options=options)
        return self._adopt(parse_user_auth(response))
