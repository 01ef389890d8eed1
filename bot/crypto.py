"""Encryption at rest for tokens and secrets (Fernet: AES-128-CBC + HMAC-SHA256).

Fernet is authenticated, versioned and time-stamped, so a tampered or foreign
ciphertext fails loudly instead of decrypting to garbage. FBLINK_SECRET_KEY may
hold several comma-separated keys, newest first (MultiFernet): new secrets are
encrypted with the newest key and any listed key decrypts, which is what lets
``fblink rotate-keys`` move stored rows to a new key while the bot runs.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CryptoError(Exception):
    """A stored secret could not be decrypted (wrong FBLINK_SECRET_KEY, or tampered)."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


def split_keys(value: str) -> list[str]:
    """The keys of a FBLINK_SECRET_KEY value, newest first; blanks around commas are ignored."""
    return [k.strip() for k in value.split(",") if k.strip()]


class Vault:
    """Encrypts with the newest configured key; decrypts with any of them."""

    def __init__(self, keys: str) -> None:
        parts = split_keys(keys)
        if not parts:
            raise ValueError("no Fernet key given")
        self._newest = Fernet(parts[0].encode())
        self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        self.key_count = len(parts)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise CryptoError("stored secret cannot be decrypted with FBLINK_SECRET_KEY") from None

    def is_current(self, ciphertext: str) -> bool:
        """True when the newest key alone decrypts it (rotation can leave it as it is)."""
        try:
            self._newest.decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the newest key, keeping Fernet's original timestamp."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise CryptoError("stored secret cannot be decrypted with FBLINK_SECRET_KEY") from None

    def __repr__(self) -> str:
        return f"Vault(<{self.key_count} key(s) hidden>)"
