"""The base of the X-MFA operation groups: an :class:`~mfa_common.api_group.APIGroup` that
reads answers with the X-MFA converter, knows where each operation lives (``paths``), and hands
the JWT of a login step to the client's session token when it holds one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..api_group import APIGroup
from .auth import SessionTokenAuth
from .models import UserAuth, converter
from .protocol import XMfaPaths

if TYPE_CHECKING:
    from ..converters import LazyConverter
    from ..requestor import Requestor

__all__ = ["XMfaAPIGroup"]


class XMfaAPIGroup(APIGroup):
    """One group of ``XMfaClient`` operations."""

    def __init__(self, requestor: Requestor, paths: XMfaPaths) -> None:
        super().__init__(requestor)
        self._paths = paths

    def _converter(self) -> LazyConverter:
        return converter

    def _adopt(self, user: UserAuth) -> UserAuth:
        """Keep ``user``'s JWT for the next calls when the client holds its own session token
        (no ``auth=`` backend); return ``user``."""
        auth = self._requestor.auth
        if isinstance(auth, SessionTokenAuth):
            auth.token = user.token
        return user
