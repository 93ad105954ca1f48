"""``client.users.ssh_keys``: a user's SSH public keys (list, add, get, delete)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from mfa_common.errors import ConflictError, InvalidInputError
from mfa_common.options import RequestOptions

from ._base import MetalCloudAPIGroup
from .errors import SshKeyAlreadyPresentError, refined
from .models import CreateUserSshKey, UserSshKey, UserSshKeyList, converter
from .protocol import check_id, user_resource

__all__ = ["UserSshKeysAPI", "ssh_key_identity"]


def ssh_key_identity(key: str) -> str:
    """The part of an OpenSSH public key line that identifies the key (type and base64 body;
    the comment does not count), for comparing keys."""
    return " ".join(key.strip().split()[:2])


class UserSshKeysAPI(MetalCloudAPIGroup):
    """``client.users.ssh_keys``: ``/api/v2/users/{id}/ssh-keys`` and ``/ssh-keys/{keyId}``."""

    async def list(self, user_id: int, *, options: RequestOptions | None = None) -> AsyncIterator[UserSshKey]:
        """The user's keys (fetched when iteration starts).

        Args:
            user_id: The user's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        listing = await self._get(user_resource(user_id, "ssh-keys"), UserSshKeyList, options=options)
        for item in listing.data:
            yield item

    async def add(self, user_id: int, ssh_key: str, *, options: RequestOptions | None = None) -> UserSshKey:
        """Add an OpenSSH public key line (201).

        Not retried blindly: a lost answer is an unknown outcome (look the key up with
        :meth:`find`).

        Args:
            user_id: The user's id.
            ssh_key: ``<type> <base64> [comment]``.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            SshKeyAlreadyPresentError: The user has it (409).
        """
        if not isinstance(ssh_key, str) or len(ssh_key.split()) < 2:
            raise InvalidInputError("ssh_key must be an OpenSSH public key line: '<type> <base64> [comment]'")
        payload = converter.unstructure(CreateUserSshKey(ssh_key=ssh_key.strip()))
        with refined(ConflictError, SshKeyAlreadyPresentError):
            response = await self._requestor.request(
                "POST", user_resource(user_id, "ssh-keys"), json=payload, options=options
            )
        return self._decode(response, UserSshKey)

    async def find(
        self, user_id: int, ssh_key: str, *, options: RequestOptions | None = None
    ) -> UserSshKey | None:
        """The user's key equal to ``ssh_key`` (ignoring the comment), or None.

        Args:
            user_id: The user's id.
            ssh_key: An OpenSSH public key line.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        wanted = ssh_key_identity(ssh_key)
        async for key in self.list(user_id, options=options):
            if ssh_key_identity(key.ssh_key) == wanted:
                return key
        return None

    async def get(self, user_id: int, key_id: int, *, options: RequestOptions | None = None) -> UserSshKey:
        """One key of the user.

        Args:
            user_id: The user's id.
            key_id: The key's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        check_id(key_id, "key_id")
        return await self._get(user_resource(user_id, "ssh-keys", key_id), UserSshKey, options=options)

    async def delete(self, user_id: int, key_id: int, *, options: RequestOptions | None = None) -> None:
        """``DELETE`` (204).

        Not replayed after a lost answer: a replay would meet 404 for a key it did delete.

        Args:
            user_id: The user's id.
            key_id: The key's id.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            NotFoundError: An unknown or already deleted key.
        """
        check_id(key_id, "key_id")
        await self._requestor.request(
            "DELETE", user_resource(user_id, "ssh-keys", key_id), options=options, idempotent=False
        )
