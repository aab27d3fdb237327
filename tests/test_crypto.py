"""Secrets at rest: round-trip, tamper detection, key separation."""

from __future__ import annotations

import pytest

from lytics.crypto import Cipher, InvalidToken


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    cipher = Cipher("k1")
    token = cipher.encrypt_text("ghp_supersecret")
    assert b"supersecret" not in token
    assert cipher.decrypt_text(token) == "ghp_supersecret"


def test_other_key_or_purpose_cannot_decrypt() -> None:
    token = Cipher("k1").encrypt(b"x")
    with pytest.raises(InvalidToken):
        Cipher("k2").decrypt(token)
    with pytest.raises(InvalidToken):
        Cipher("k1", purpose="webhooks").decrypt(token)


def test_tampered_ciphertext_is_rejected() -> None:
    cipher = Cipher("k1")
    token = bytearray(cipher.encrypt(b"payload"))
    token[-5] ^= 0x01
    with pytest.raises(InvalidToken):
        cipher.decrypt(bytes(token))


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Cipher("")
