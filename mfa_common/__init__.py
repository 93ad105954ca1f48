"""mfa_common: the core shared by the Quatrix and MetalCloud SDKs.

TOTP and otpauth URIs (:mod:`.totp`, :mod:`.otpauth`), replay-safe codes (:mod:`.replay_guard`),
recovery codes (:mod:`.recovery_codes`), code providers (:mod:`.code_providers`), auth backends
(:mod:`.auth`), the HTTP machinery (:mod:`.client`, :mod:`.retry`, :mod:`.errors`), the X-MFA-Token
exchange (:mod:`.xmfa`), and the batch runner (:mod:`.batch`).
"""

from .auth import ApiKeyAuth, BasicAuth, BearerTokenAuth, CredentialAuth, jwt_expiry
from .client import BaseClient, RequestOptions
from .clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock
from .code_providers import (
    CallbackCodeProvider,
    CodeProvider,
    IssuedCode,
    MfaChallenge,
    RecoveryCodeProvider,
    StaticCodeProvider,
    TotpCodeProvider,
)
from .errors import *  # noqa: F403 - the error hierarchy is part of the public API
from .errors import __all__ as _error_names
from .otpauth import OtpauthUri, build_otpauth_uri, parse_otpauth_uri
from .recovery_codes import RecoveryCodeFormat, RecoveryCodeStore, normalize_recovery_code
from .replay_guard import STEP_REGISTRY, next_totp
from .retry import RetryPolicy
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
    "CallbackCodeProvider",
    "Clock",
    "CodeProvider",
    "CredentialAuth",
    "FakeClock",
    "IssuedCode",
    "MfaChallenge",
    "OtpauthUri",
    "RecoveryCodeFormat",
    "RecoveryCodeProvider",
    "RecoveryCodeStore",
    "RequestOptions",
    "RetryPolicy",
    "Secret",
    "StaticCodeProvider",
    "SystemClock",
    "Totp",
    "TotpCodeProvider",
    "WeakSecretWarning",
    "build_otpauth_uri",
    "jwt_expiry",
    "next_totp",
    "normalize_recovery_code",
    "parse_otpauth_uri",
    *_error_names,
]
