"""The names every SDK package re-exports: the whole error hierarchy, the code providers, the
options (:class:`ClientOptions`, :class:`RequestOptions`) and the retry policy.

``quatrix_async``, ``metalcloud_async`` and ``mfa_common.xmfa`` each do
``from mfa_common.public_api import *`` and add :data:`__all__` to their own, so
``from quatrix_async import MfaCodeRejectedError, CallbackCodeProvider`` works and names the same
objects as ``mfa_common``. The list is derived from :mod:`mfa_common.errors` here, once.
"""

from __future__ import annotations

from .code_providers import (
    CallbackCodeProvider,
    CodeProvider,
    IssuedCode,
    MfaChallenge,
    RecoveryCodeProvider,
    StaticCodeProvider,
    TotpCodeProvider,
)
from .errors import *  # noqa: F403 - re-exported on purpose, see the module docstring
from .errors import __all__ as _error_names
from .options import ClientOptions, RequestOptions
from .retry import RetryPolicy

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
