"""The names every SDK package re-exports: the whole error hierarchy, the code providers, the
options (:class:`ClientOptions`, :class:`RequestOptions`) and the retry policy.

``quatrix_async``, ``metalcloud_async`` and ``mfa_common.xmfa`` each add :data:`__all__` to
their own, so ``from quatrix_async import MfaCodeRejectedError, CallbackCodeProvider`` works and
names the same objects as ``mfa_common``. The list is derived from :mod:`mfa_common.errors` here,
once. The error classes are bound at import (they cost nothing); the code providers and the
options load on first use (:data:`DEFERRED` says from where), so a package that only lists the
names (a command-line tool printing its help) does not load the HTTP machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .errors import *  # noqa: F403 - re-exported on purpose, see the module docstring
from .errors import __all__ as _error_names

if TYPE_CHECKING:
    from .code_providers import (
        CallbackCodeProvider,
        CodeProvider,
        IssuedCode,
        MfaChallenge,
        RecoveryCodeProvider,
        StaticCodeProvider,
        TotpCodeProvider,
    )
    from .options import ClientOptions, RequestOptions
    from .retry import RetryPolicy

#: The public names that are not errors, and the absolute module each loads from.
DEFERRED: dict[str, str] = {
    **dict.fromkeys(
        (
            "CallbackCodeProvider",
            "CodeProvider",
            "IssuedCode",
            "MfaChallenge",
            "RecoveryCodeProvider",
            "StaticCodeProvider",
            "TotpCodeProvider",
        ),
        "mfa_common.code_providers",
    ),
    "ClientOptions": "mfa_common.options",
    "RequestOptions": "mfa_common.options",
    "RetryPolicy": "mfa_common.retry",
}

__all__ = [
    "CallbackCodeProvider",
    "ClientOptions",
    "CodeProvider",
    "IssuedCode",
    "MfaChallenge",
    "RecoveryCodeProvider",
    "RequestOptions",
    "RetryPolicy",
    "StaticCodeProvider",
    "TotpCodeProvider",
    *_error_names,
]

if not TYPE_CHECKING:  # type checkers take the names from the imports above
    __getattr__, __dir__ = lazy_exports(__name__, DEFERRED, __all__)
