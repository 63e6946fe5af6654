"""The GitHub App side of the fake: the App's key pair, GitHub's JWT checks, installation tokens.

Pure apart from the key generation: the server calls these with its own clock and lock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# GitHub's own 401 messages for a JWT it will not take.
UNDECODABLE = "A JSON web token could not be decoded"
EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at "
    "which the assertion expires"
)
TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
ISSUED_LATER = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was "
    "issued"
)
CLOCK_LEEWAY_SECONDS = 60  # how far ahead of the fake's clock a JWT's iat may be
MAX_JWT_SECONDS = 600  # GitHub: a JWT lives at most 10 minutes
TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class AppKey:
    """An App's RSA key pair in PEM: GitHub keeps the public half, the App the private one."""

    private_pem: bytes
    public_pem: bytes


@cache
def app_key(name: str = "app") -> AppKey:
    """One RSA-2048 key pair per ``name`` per test session (generating one takes ~0.1 s)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "BEGIN RSA PRIVATE KEY", as GitHub's
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return AppKey(private, public)


def jwt_problem(token: str, *, public_key_pem: bytes, app_id: int, now: float) -> str | None:
    """Why GitHub would refuse ``token`` as the App's JWT at ``now``, or None if it takes it.

    Checked as GitHub does: RS256 signed by the App's key, ``iss`` the App id (an int or a
    string), ``exp`` in the future, ``iat`` at most a minute ahead of the server's clock, and at
    most ten minutes between ``iat`` and ``exp`` (nor ``exp`` more than ten minutes away).
    """
    try:
        claims = jwt.decode(
            token,
            public_key_pem,
            algorithms=["RS256"],
            options={
                "require": ["iat", "exp", "iss"],
                "verify_exp": False,  # checked below, against the fake's clock
                "verify_iat": False,
                "verify_iss": False,
            },
        )
    except jwt.PyJWTError:
        return UNDECODABLE
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(iat, int) or iat > now + CLOCK_LEEWAY_SECONDS:
        return ISSUED_LATER
    if not isinstance(exp, int | float) or exp <= now:
        return EXPIRED
    if exp - iat > MAX_JWT_SECONDS or exp > now + MAX_JWT_SECONDS:
        return TOO_LONG
    if str(claims["iss"]) != str(app_id):
        return UNDECODABLE  # GitHub checks the signature with the key of the App named by iss
    return None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    installation_id: int
    issued_at: float
    expires_at: float  # UNIX seconds


class TokenStore:
    """Installation tokens handed out; not locked itself (the server holds its lock)."""

    def __init__(self) -> None:
        self.tokens: dict[str, IssuedToken] = {}

    def issue(self, installation_id: int, *, now: float, ttl: float) -> IssuedToken:
        value = "ghs_" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))
        issued = IssuedToken(value, installation_id, now, now + ttl)
        self.tokens[value] = issued
        return issued

    def valid(self, token: str, *, now: float) -> IssuedToken | None:
        """The token if it was issued and has not expired (GitHub then answers 401)."""
        found = self.tokens.get(token)
        return found if found is not None and now < found.expires_at else None

    def expire(self, installation_id: int | None = None) -> None:
        """End tokens now (all, or one installation's), as a revocation would."""
        for value, issued in list(self.tokens.items()):
            if installation_id is None or issued.installation_id == installation_id:
                self.tokens[value] = IssuedToken(value, issued.installation_id, issued.issued_at, 0)
