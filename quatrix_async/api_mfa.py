"""MfaAPI: administrators turning MFA on, resetting it and turning it off for users."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mfa_common.options import RequestOptions
from mfa_common.requestor import Requestor
from mfa_common.secret import Secret, wrap

from ._base import QuatrixAPIGroup
from .api_profile import ProfileAPI
from .protocol import auth_type_of, user_ids

if TYPE_CHECKING:
    # The models load with the first call (see quatrix_async/__init__.py).
    from .models import AuthType, ProfileRemoveMfaResp, ProfileSetMfaResp

__all__ = ["MfaAPI"]


class MfaAPI(QuatrixAPIGroup):
    """``client.mfa``: ``/user/set-mfa``, ``/user/reset-mfa``, ``/user/remove-mfa`` (admin), plus
    the logged-in user's own switches (same as ``client.profile``).
    """

    def __init__(self, requestor: Requestor, profile: ProfileAPI) -> None:
        super().__init__(requestor)
        self._profile = profile

    async def set_for_users(
        self,
        ids: Iterable[str],
        auth_type: AuthType | str,
        code: str | Secret[str],
        *,
        options: RequestOptions | None = None,
    ) -> ProfileRemoveMfaResp:
        """``POST /user/set-mfa``: enable MFA for the users with these ids.

        With ``"2FA"`` the users are forced to use it; every logged-in session of theirs is closed.
        Repeating the call leaves the same state, so it is retried like a read.

        Args:
            ids: The users' ids.
            auth_type: ``"2FA"`` or ``"PIN"``.
            code: Required by the API: for ``"PIN"`` the PIN to set; its meaning for ``"2FA"`` is
                UNCONFIRMED.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import ProfileRemoveMfaResp, UserSetMfaReq, converter

        body = UserSetMfaReq(ids=user_ids(ids), auth_type=auth_type_of(auth_type), code=wrap(code))
        response = await self._requestor.request(
            "POST", "user/set-mfa", json=converter.unstructure(body), idempotent=True, options=options
        )
        return self._decode(response, ProfileRemoveMfaResp)

    async def reset_for_users(
        self, ids: Iterable[str], *, options: RequestOptions | None = None
    ) -> ProfileRemoveMfaResp:
        """``POST /user/reset-mfa``: wipe the users' 2FA secrets.

        MFA stays on, their sessions are closed and they set 2FA up again at the next login. Not
        retried (a late repeat would wipe a secret the user has just set up again).

        Args:
            ids: The users' ids.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import ProfileRemoveMfaResp, ResetAuthType, UserResetMfaReq, converter

        body = UserResetMfaReq(ids=user_ids(ids), auth_type=ResetAuthType.TWO_FA)
        response = await self._requestor.request(
            "POST", "user/reset-mfa", json=converter.unstructure(body), idempotent=False, options=options
        )
        return self._decode(response, ProfileRemoveMfaResp)

    async def remove_for_users(
        self, ids: Iterable[str], auth_type: AuthType | str, *, options: RequestOptions | None = None
    ) -> ProfileRemoveMfaResp:
        """``POST /user/remove-mfa``: disable MFA for the users.

        Refused when 2FA is forced for the whole account. Idempotent, so retried like a read.

        Args:
            ids: The users' ids.
            auth_type: ``"2FA"`` or ``"PIN"``.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import ProfileRemoveMfaResp, UserRemoveMfaReq, converter

        body = UserRemoveMfaReq(ids=user_ids(ids), auth_type=auth_type_of(auth_type))
        response = await self._requestor.request(
            "POST", "user/remove-mfa", json=converter.unstructure(body), idempotent=True, options=options
        )
        return self._decode(response, ProfileRemoveMfaResp)

    async def set_own(
        self, auth_type: AuthType | str, code: str | Secret[str], *, options: RequestOptions | None = None
    ) -> ProfileSetMfaResp:
        """``POST /profile/set-mfa`` (same as ``client.profile.set_mfa``).

        Args:
            auth_type: ``"2FA"`` or ``"PIN"``.
            code: A current code of the new secret, or the new PIN.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._profile.set_mfa(auth_type, code, options=options)

    async def remove_own(
        self, auth_type: AuthType | str, *, options: RequestOptions | None = None
    ) -> ProfileRemoveMfaResp:
        """``POST /profile/remove-mfa`` (same as ``client.profile.remove_mfa``).

        Args:
            auth_type: ``"2FA"`` or ``"PIN"``.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._profile.remove_mfa(auth_type, options=options)
