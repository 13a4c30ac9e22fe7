"""Secrets at rest (a tenant's provider keys): Fernet (AES-128-CBC + HMAC-SHA256,
from ``cryptography``) with keys derived from SECRET_KEY, then each of
SECRET_KEY_FALLBACKS for reading — so rotating SECRET_KEY the way Django
documents it (the old key moved to the fallbacks) keeps stored secrets
readable; re-saving one re-encrypts it under the new key."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

__all__ = ["InvalidToken", "decrypt", "encrypt"]

_CONTEXT = b"vito.secretbox.v1:"


class InvalidToken(Exception):
    """No current or fallback key opens the token (or it is not a token)."""


# ``cryptography`` is imported on first use, not at import: this module is
# loaded by every process (admin, models) and Fernet costs ~10 MB that most
# workers never need (docs/benchmarks.md, worker RSS).


def _fernet(secret_key: str) -> Fernet:
    from cryptography.fernet import Fernet

    # A purpose-bound key: SHA-256 over a fixed context and SECRET_KEY, so this
    # key is not the one Django signs cookies with.
    digest = hashlib.sha256(_CONTEXT + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _box() -> MultiFernet:
    from cryptography.fernet import MultiFernet

    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(k) for k in keys])


def encrypt(plaintext: str) -> str:
    return _box().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext; InvalidToken when no current or fallback key opens it."""
    from cryptography import fernet

    try:
        return _box().decrypt(token.encode("ascii")).decode()
    except fernet.InvalidToken:
        raise InvalidToken("no current or fallback key opens this token") from None
