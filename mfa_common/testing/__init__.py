"""Shared machinery for the fake servers: fault injection, loopback serving, TOTP and JWT. The
fakes themselves are each API's ``testing`` package: :mod:`quatrix_async.testing`,
:mod:`metalcloud_async.testing` and :mod:`mfa_common.xmfa.testing`.

Every fake (``QuatrixFake``, ``MetalCloudFake``, ``XMfaFake``) speaks one vocabulary: it is
itself an ASGI app (``httpx.ASGITransport(app=fake)``, ``serve(fake)``), ``add_user(<login>,
password, *, totp_secret=..., mfa=..., ...)`` adds an account (the login is ``email`` or
``username``, as the API's login and its client name it), ``user(...)`` finds one, ``counts``
counts what happened, ``ledger`` records applied writes, and ``python -m <package>.testing
--accounts FILE`` reads a JSON list of ``add_user`` keyword sets.

Needs the optional ``fakes`` dependencies (Starlette, uvicorn).
"""

from __future__ import annotations

from mfa_common._extras import require_extra, run_as_module

require_extra("fakes", "the fake servers", exit_on_missing=run_as_module())

from mfa_common.testing._controls import (
    FAULT_KINDS,
    FakeControls,
    FaultInjectionMiddleware,
    FaultKind,
    FaultPlan,
    InjectedDisconnect,
    Ledger,
    LedgerEntry,
    add_control_arguments,
    controls_from_arguments,
    find_controls,
)
from mfa_common.testing._jwt import JwtExpired, JwtInvalid, decode_jwt, encode_jwt
from mfa_common.testing._request_parsing import BadJson, has_lone_surrogate, load_json, parse_int
from mfa_common.testing._server import (
    ServerHandle,
    SwappableApp,
    run_forever,
    serve,
    server_argument_parser,
)
from mfa_common.testing.totp_verifier import (
    ReplayRejectingVerifier,
    generate_base32_secret,
    generate_recovery_codes,
)

__all__ = [
    "FAULT_KINDS",
    "BadJson",
    "FakeControls",
    "FaultInjectionMiddleware",
    "FaultKind",
    "FaultPlan",
    "InjectedDisconnect",
    "JwtExpired",
    "JwtInvalid",
    "Ledger",
    "LedgerEntry",
    "ReplayRejectingVerifier",
    "ServerHandle",
    "SwappableApp",
    "add_control_arguments",
    "controls_from_arguments",
    "decode_jwt",
    "encode_jwt",
    "find_controls",
    "generate_base32_secret",
    "generate_recovery_codes",
    "has_lone_surrogate",
    "load_json",
    "parse_int",
    "run_forever",
    "serve",
    "server_argument_parser",
]
