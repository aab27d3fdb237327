"""Encryption at rest for tokens, webhook secrets and S3 credentials.

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from LYTICS_SECRET_KEY
with HKDF, so the operator's secret can be any string and each purpose gets
its own key.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Cipher", "InvalidToken"]


class Cipher:
    def __init__(self, secret_key: str, purpose: str = "at-rest") -> None:
        if not secret_key:
            raise ValueError("secret key must not be empty")
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"lytics:{purpose}:v1".encode()
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        """Raises InvalidToken when the data was not made with this key (or was altered)."""
        return self._fernet.decrypt(token)

    def encrypt_text(self, plaintext: str) -> bytes:
        return self.encrypt(plaintext.encode())

    def decrypt_text(self, token: bytes) -> str:
        return self.decrypt(token).decode()
