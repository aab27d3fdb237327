"""Webhook signature checks: pure functions over the raw body bytes and the request headers.

Every check runs on the bytes exactly as received (after transport
decompression), before any parsing: re-serialised JSON never verifies. Digests
are compared with `hmac.compare_digest`. Each configured secret is tried, so
a sender can rotate without a gap. The result says why a delivery failed so
the endpoint can answer precisely and count the reason.

Schemes:

- Standard Webhooks / Svix (Resend): `svix-id`, `svix-timestamp`, `svix-signature`
  (or the `webhook-*` names); HMAC-SHA256 keyed with the base64 after `whsec_`
  over `"{id}.{timestamp}." + body`; the signature header holds space-separated
  `v1,<base64>` entries; the timestamp must be within ±5 minutes.
- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
- Generic HMAC: `X-Signature: <hex HMAC-SHA256 of the body>`, `sha256=` optional.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lytics.webhook_secrets import standard_webhooks_key

TOLERANCE_S = 300
# Bounds the work one request can ask for (entries x secrets HMACs).
MAX_SIGNATURE_ENTRIES = 10
_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_UNIX_SECONDS = re.compile(r"^[0-9]{1,12}$")

Reason = Literal[
    "ok",
    "no_secret",
    "missing_signature",
    "malformed_signature",
    "invalid_signature",
    "stale_timestamp",
]


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: Reason
    message: str
    # Which configured secret matched: tells an operator when an old one is no longer used.
    secret_index: int | None = None


def _passed(index: int) -> Verification:
    return Verification(True, "ok", "signature verified", index)


def _failed(reason: Reason, message: str) -> Verification:
    return Verification(False, reason, message)


NO_SECRET = _failed("no_secret", "no signing secret is configured for this source")


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _matching_secret(
    secrets: Sequence[str],
    candidates: Sequence[bytes],
    key_for: Callable[[str], bytes | None],
    content: bytes,
) -> int | None:
    """The index of the first secret whose HMAC-SHA256 of `content` is among the candidates."""
    for index, secret in enumerate(secrets):
        key = key_for(secret)
        if key is None:
            continue
        expected = hmac.new(key, content, hashlib.sha256).digest()
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return index
    return None


def _svix_key(secret: str) -> bytes | None:
    try:
        return standard_webhooks_key(secret)
    except ValueError:
        return None  # a secret that cannot be a Svix key verifies nothing


def _utf8_key(secret: str) -> bytes:
    return secret.encode()


# --- Standard Webhooks / Svix ---------------------------------------------------------


@dataclass(frozen=True)
class _StandardHeaders:
    family: str  # "svix" or "webhook": which header names the sender used
    id: str
    timestamp: str
    signatures: list[bytes]


def standard_webhooks_id(headers: Mapping[str, str]) -> str | None:
    """The sender's message id (`svix-id` or `webhook-id`): the same on every retry."""
    lowered = _lower(headers)
    return lowered.get("svix-id") or lowered.get("webhook-id") or None


def _standard_headers(lowered: dict[str, str]) -> _StandardHeaders | Verification:
    family = "svix" if any(name.startswith("svix-") for name in lowered) else "webhook"
    values: dict[str, str] = {}
    for part in ("id", "timestamp", "signature"):
        values[part] = lowered.get(f"{family}-{part}", "").strip()
        if not values[part]:
            return _failed(
                "missing_signature",
                f"missing {family}-{part} header (Standard Webhooks: "
                "svix-id, svix-timestamp, svix-signature or webhook-id/-timestamp/-signature)",
            )
    if not _UNIX_SECONDS.match(values["timestamp"]):
        return _failed("malformed_signature", f"{family}-timestamp must be Unix time in seconds")
    signatures: list[bytes] = []
    for entry in values["signature"].split()[:MAX_SIGNATURE_ENTRIES]:
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue  # other versions (v1a: asymmetric) are not ours to check
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not signatures:
        return _failed("malformed_signature", f"{family}-signature holds no `v1,<base64>` entry")
    return _StandardHeaders(family, values["id"], values["timestamp"], signatures)


def _timestamp_problem(parsed: _StandardHeaders, now: float, tolerance: int) -> Verification | None:
    skew = int(parsed.timestamp) - now
    if abs(skew) <= tolerance:
        return None
    when = f"{-skew:.0f} s old" if skew < 0 else f"{skew:.0f} s in the future"
    return _failed(
        "stale_timestamp",
        f"{parsed.family}-timestamp is {when}; at most {tolerance} s either way is accepted",
    )


def verify_standard_webhooks(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_S,
) -> Verification:
    if not secrets:
        return NO_SECRET
    parsed = _standard_headers(_lower(headers))
    if isinstance(parsed, Verification):
        return parsed
    signed = f"{parsed.id}.{parsed.timestamp}.".encode() + body
    index = _matching_secret(secrets, parsed.signatures, _svix_key, signed)
    if index is None:
        return _failed(
            "invalid_signature",
            "signature does not match the body; verify the raw bytes, not re-serialised JSON",
        )
    # Checked after the signature, so "stale" always means an authentic but late or
    # replayed delivery (or a skewed clock), never forged noise.
    problem = _timestamp_problem(parsed, time.time() if now is None else now, tolerance)
    return problem or _passed(index)


# --- GitHub and generic HMAC ------------------------------------------------------------


def _verify_hex(
    value: str, body: bytes, secrets: Sequence[str], header: str, *, prefix_required: bool
) -> Verification:
    scheme, sep, digest = value.strip().partition("=")
    if not sep:
        scheme, digest = "", scheme
    if (scheme and scheme.lower() != "sha256") or (prefix_required and not scheme):
        return _failed("malformed_signature", f"{header} must be `sha256=<hex digest>`")
    if not _HEX_SHA256.match(digest):
        return _failed("malformed_signature", f"{header} must hold a hex HMAC-SHA256 (64 digits)")
    index = _matching_secret(secrets, [bytes.fromhex(digest)], _utf8_key, body)
    if index is None:
        return _failed(
            "invalid_signature",
            "signature does not match the body; sign the raw bytes, not re-serialised JSON",
        )
    return _passed(index)


def verify_github(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> Verification:
    if not secrets:
        return NO_SECRET
    lowered = _lower(headers)
    value = lowered.get("x-hub-signature-256", "")
    if not value.strip():
        hint = (
            " (only the SHA-1 X-Hub-Signature was sent; set a secret on the GitHub webhook)"
            if "x-hub-signature" in lowered
            else ""
        )
        return _failed("missing_signature", f"missing X-Hub-Signature-256 header{hint}")
    return _verify_hex(value, body, secrets, "X-Hub-Signature-256", prefix_required=True)


def verify_hmac(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> Verification:
    if not secrets:
        return NO_SECRET
    value = _lower(headers).get("x-signature", "")
    if not value.strip():
        return _failed(
            "missing_signature",
            "missing X-Signature header (hex HMAC-SHA256 of the body, `sha256=` optional)",
        )
    return _verify_hex(value, body, secrets, "X-Signature", prefix_required=False)
