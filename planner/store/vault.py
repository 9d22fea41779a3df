"""Secrets at rest: adapter credentials and browser sessions are stored encrypted, never in the clear.

The key comes from the environment (`COS_SECRET_KEYS`, read by the entry point): a comma-separated list of
Fernet keys, newest first. Encryption always uses the newest key; decryption accepts any listed key, so a key
is rotated by putting a new one in front, running `rotate` over the stored secrets, then dropping the old one.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class VaultError(Exception):
    """A secret could not be read."""


class NoSecretKey(VaultError):
    def __init__(self) -> None:
        super().__init__("no secret key is configured (COS_SECRET_KEYS)")


class BadSecretKey(VaultError, ValueError):
    def __init__(self, position: int) -> None:
        self.position = position
        super().__init__(
            f"secret key #{position} in COS_SECRET_KEYS is not a valid Fernet key (32 url-safe base64 bytes)"
        )


class UndecryptableSecret(VaultError):
    def __init__(self) -> None:
        super().__init__("a stored secret cannot be decrypted with any configured key (was its key removed too soon?)")


class Vault:
    """Encrypts and decrypts secrets with the configured keys (newest first)."""

    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        if not keys:
            raise NoSecretKey()
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError) as error:
                raise BadSecretKey(position) from error
        self._fernet = MultiFernet(fernets)
        self._secrets = tuple(base64.urlsafe_b64decode(key.strip().encode()) for key in keys)

    @classmethod
    def from_setting(cls, value: str | None) -> Vault:
        """A vault from the comma-separated `COS_SECRET_KEYS` value."""
        return cls([key for key in (value or "").split(",") if key.strip()])

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def derive_keys(self, purpose: bytes) -> tuple[bytes, ...]:
        """A 32-byte key for `purpose` from each configured key, newest first (HKDF-SHA256), so another use of the
        same secrets (the decision log's signatures) never holds the encryption keys themselves."""
        info = b"chief-of-staff " + purpose
        return tuple(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret) for secret in self._secrets
        )

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as error:
            raise UndecryptableSecret() from error

    def rotate(self, token: bytes) -> bytes:
        """The same secret, re-encrypted with the newest key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as error:
            raise UndecryptableSecret() from error

    def __repr__(self) -> str:
        return "Vault(<keys hidden>)"
