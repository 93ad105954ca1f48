"""Auth backends: ``httpx.Auth`` classes any httpx client accepts.

* :class:`BasicAuth`, :class:`ApiKeyAuth`, :class:`BearerTokenAuth`: static credentials;
* :class:`CredentialAuth`: the single-flight base for backends that log in (the Quatrix
  session backend, the X-MFA-Token exchange, the MetalCloud JWT login).
"""

from ._single_flight import CredentialAuth, Sender
from .jwt import jwt_claims, jwt_expiry
from .static import ApiKeyAuth, BasicAuth, BearerTokenAuth, StaticHeaderAuth

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "BearerTokenAuth",
    "CredentialAuth",
    "Sender",
    "StaticHeaderAuth",
    "jwt_claims",
    "jwt_expiry",
]
