"""The base of the Quatrix operation groups: an :class:`~mfa_common.api_group.APIGroup` that
reads answers with the Quatrix converter (its models load with the first answer read)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfa_common.api_group import APIGroup

if TYPE_CHECKING:
    from mfa_common.converters import LazyConverter

__all__ = ["QuatrixAPIGroup"]


class QuatrixAPIGroup(APIGroup):
    """One group of ``QuatrixClient`` operations."""

    def _converter(self) -> LazyConverter:
        from .models import converter  # the models load with the first answer read

        return converter
