"""mfa_common: the core shared by the Quatrix and MetalCloud SDKs.

TOTP and otpauth URIs (:mod:`.totp`, :mod:`.otpauth`), replay-safe codes (:mod:`.replay_guard`),
recovery codes (:mod:`.recovery_codes`), code providers (:mod:`.code_providers`), auth backends
(:mod:`.auth`), the HTTP machinery (:mod:`.requestor`, :mod:`.client`, :mod:`.options`,
:mod:`.retry`, :mod:`.errors`), the operation groups' base (:mod:`.api_group`), the X-MFA-Token
exchange (:mod:`.xmfa`), and the batch runner (:mod:`.batch`).
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .errors import *  # noqa: F403 - the error classes cost nothing to import
from .public_api import DEFERRED as _PUBLIC_DEFERRED
from .public_api import __all__ as _public_names

if TYPE_CHECKING:
    from .auth import ApiKeyAuth, BasicAuth, BearerTokenAuth, CredentialAuth, jwt_expiry
    from .client import BaseClient
    from .clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock
    from .otpauth import OtpauthUri, build_otpauth_uri, parse_otpauth_uri
    from .public_api import *  # noqa: F403 - the error hierarchy and the code providers
    from .qr import print_qr, render_qr
    from .recovery_codes import RecoveryCodeFormat, RecoveryCodeStore, normalize_recovery_code
    from .replay_guard import STEP_REGISTRY, next_totp
    from .secret import Secret
    from .totp import Algorithm, Totp, WeakSecretWarning

__version__ = "0.1.0"

__all__ = [
    "STEP_REGISTRY",
    "SYSTEM_CLOCK",
    "Algorithm",
    "ApiKeyAuth",
    "BaseClient",
    "BasicAuth",
    "BearerTokenAuth",
    "Clock",
    "CredentialAuth",
    "FakeClock",
    "OtpauthUri",
    "RecoveryCodeFormat",
    "RecoveryCodeStore",
    "Secret",
    "SystemClock",
    "Totp",
    "WeakSecretWarning",
    "build_otpauth_uri",
    "jwt_expiry",
    "next_totp",
    "normalize_recovery_code",
    "parse_otpauth_uri",
    "print_qr",
    "render_qr",
    *_public_names,
]

# Every name but the errors loads with its first use: a program pays for the HTTP machinery when
# it builds a client, and a command-line tool printing its help never does.
_SOURCES = {
    ".auth": ("ApiKeyAuth", "BasicAuth", "BearerTokenAuth", "CredentialAuth", "jwt_expiry"),
    ".client": ("BaseClient",),
    ".clock": ("SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"),
    ".otpauth": ("otpauth", "OtpauthUri", "build_otpauth_uri", "parse_otpauth_uri"),
    ".qr": ("qr", "print_qr", "render_qr"),
    ".recovery_codes": ("RecoveryCodeFormat", "RecoveryCodeStore", "normalize_recovery_code"),
    ".replay_guard": ("STEP_REGISTRY", "next_totp"),
    ".secret": ("Secret",),
    ".totp": ("Algorithm", "Totp", "WeakSecretWarning"),
}

if not TYPE_CHECKING:  # type checkers take the names from the imports above
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            **_PUBLIC_DEFERRED,
            **{name: source for source, names in _SOURCES.items() for name in names},
        },
        __all__,
    )
