"""Signed unsubscribe tokens: who (address) stops receiving which project's digest.

HMAC-SHA256 under a key derived from LYTICS_SECRET_KEY for this purpose alone
(HKDF, as lytics.crypto does), so an unsubscribe token can never be confused
with anything else the secret protects. Tokens do not expire: a link in a
months-old email must still work.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PATH = "/v1/digest/unsubscribe"


class InvalidTokenError(ValueError):
    """The token was not made with this deployment's key, or was altered."""


@dataclass(frozen=True)
class Unsubscribe:
    project_id: int
    email: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UnsubscribeSigner:
    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("secret key must not be empty")
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"lytics:digest-unsubscribe:v1"
        ).derive(secret_key.encode())

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def token(self, project_id: int, email: str) -> str:
        body = json.dumps({"p": project_id, "e": email.lower()}, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def verify(self, token: str) -> Unsubscribe:
        body_part, _, mac_part = token.partition(".")
        try:
            body, mac = _unb64(body_part), _unb64(mac_part)
        except (ValueError, TypeError) as exc:
            raise InvalidTokenError("malformed token") from exc
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidTokenError("bad signature")
        try:
            data = json.loads(body)
            return Unsubscribe(int(data["p"]), str(data["e"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidTokenError("malformed token") from exc

    def url(self, public_url: str, project_id: int, email: str) -> str:
        query = urlencode({"token": self.token(project_id, email)})
        return f"{public_url.rstrip('/')}{PATH}?{query}"
