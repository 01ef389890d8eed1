"""Encryption at rest for tokens and secrets (Fernet: AES-128-CBC + HMAC-SHA256).

Fernet is authenticated, versioned and time-stamped, so a tampered or foreign
ciphertext fails loudly instead of decrypting to garbage.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class CryptoError(Exception):
    """A stored secret could not be decrypted (wrong FBLINK_SECRET_KEY, or tampered)."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class Vault:
    """Encrypts and decrypts short strings with the configured key."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise CryptoError("stored secret cannot be decrypted with FBLINK_SECRET_KEY") from None

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"
