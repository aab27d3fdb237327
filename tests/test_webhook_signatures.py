"""Webhook signature schemes, against signatures built here with `hmac` and `base64`.

What must hold: a delivery verifies only when one of the configured secrets
signed exactly these bytes (and, for Standard Webhooks, this id and a
timestamp within five minutes); any other delivery is refused with the
reason it failed. Expected signatures are computed independently of the
production code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from lytics_ingest_api.webhooks.signatures import (
    verify_github,
    verify_hmac,
    verify_standard_webhooks,
)

NOW = 1_767_225_600  # a fixed "now" so the window is exact
BODY = b'{"type":"email.bounced","created_at":"2026-01-01T00:00:00Z","data":{"to":["a@x.test"]}}'
KEY_OLD = bytes(range(24))
KEY_NEW = bytes(range(100, 124))
KEY_OTHER = b"\xff" * 24
SECRET_OLD = "whsec_" + base64.b64encode(KEY_OLD).decode()
SECRET_NEW = "whsec_" + base64.b64encode(KEY_NEW).decode()
MSG_ID = "msg_2Zb8sXyBJ1oEr5N0"


def svix_entry(key: bytes, body: bytes = BODY, ts: int = NOW, msg_id: str = MSG_ID) -> str:
    signed = f"{msg_id}.{ts}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def svix_headers(
    signature: str, ts: int | str = NOW, msg_id: str = MSG_ID, family: str = "svix"
) -> dict[str, str]:
    return {
        f"{family}-id": msg_id,
        f"{family}-timestamp": str(ts),
        f"{family}-signature": signature,
    }


def hex_hmac(secret: str, body: bytes = BODY) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- Standard Webhooks / Svix ------------------------------------------------------------


def test_valid_svix_signature_passes() -> None:
    result = verify_standard_webhooks(
        svix_headers(svix_entry(KEY_OLD)), BODY, [SECRET_OLD], now=NOW
    )
    assert (result.ok, result.reason, result.secret_index) == (True, "ok", 0)


def test_webhook_header_names_and_any_header_case_pass() -> None:
    headers = svix_headers(svix_entry(KEY_OLD), family="webhook")
    assert verify_standard_webhooks(headers, BODY, [SECRET_OLD], now=NOW).ok
    shouting = {name.upper(): value for name, value in svix_headers(svix_entry(KEY_OLD)).items()}
    assert verify_standard_webhooks(shouting, BODY, [SECRET_OLD], now=NOW).ok


def test_secret_without_whsec_prefix_is_the_same_key() -> None:
    bare = base64.b64encode(KEY_OLD).decode()
    assert verify_standard_webhooks(svix_headers(svix_entry(KEY_OLD)), BODY, [bare], now=NOW).ok


def test_rotation_two_secrets_and_two_signature_entries() -> None:
    """During rotation the sender signs with old and new keys; either configured secret passes."""
    both = f"{svix_entry(KEY_OLD)} {svix_entry(KEY_NEW)}"
    # Only the new secret configured: the second entry matches.
    only_new = verify_standard_webhooks(svix_headers(both), BODY, [SECRET_NEW], now=NOW)
    assert (only_new.ok, only_new.secret_index) == (True, 0)
    # Two secrets configured, sender still on the old key only.
    old_signed = svix_headers(svix_entry(KEY_OLD))
    on_old = verify_standard_webhooks(old_signed, BODY, [SECRET_NEW, SECRET_OLD], now=NOW)
    assert (on_old.ok, on_old.secret_index) == (True, 1)
    # An unknown key's entry next to a good one does not spoil it.
    mixed = f"{svix_entry(KEY_OTHER)} {svix_entry(KEY_NEW)}"
    assert verify_standard_webhooks(svix_headers(mixed), BODY, [SECRET_OLD, SECRET_NEW], now=NOW).ok


def test_tampered_body_fails() -> None:
    headers = svix_headers(svix_entry(KEY_OLD))
    result = verify_standard_webhooks(
        headers, BODY.replace(b"bounced", b"opened"), [SECRET_OLD], now=NOW
    )
    assert (result.ok, result.reason) == (False, "invalid_signature")


def test_reserialised_json_fails() -> None:
    """The classic bug: parsing and re-encoding changes the bytes, so the signature must fail."""
    headers = svix_headers(svix_entry(KEY_OLD))
    reserialised = json.dumps(json.loads(BODY)).encode()  # ", " and ": " separators
    assert reserialised != BODY
    result = verify_standard_webhooks(headers, reserialised, [SECRET_OLD], now=NOW)
    assert result.reason == "invalid_signature"
    assert "raw bytes" in result.message


def test_wrong_secret_fails() -> None:
    result = verify_standard_webhooks(
        svix_headers(svix_entry(KEY_OTHER)), BODY, [SECRET_OLD, SECRET_NEW], now=NOW
    )
    assert (result.ok, result.reason) == (False, "invalid_signature")


def test_signature_covers_the_id_and_timestamp() -> None:
    signed_for_other_id = svix_headers(svix_entry(KEY_OLD, msg_id="msg_other"))
    assert not verify_standard_webhooks(signed_for_other_id, BODY, [SECRET_OLD], now=NOW).ok
    moved_timestamp = svix_headers(svix_entry(KEY_OLD, ts=NOW - 1), ts=NOW)
    result = verify_standard_webhooks(moved_timestamp, BODY, [SECRET_OLD], now=NOW)
    assert result.reason == "invalid_signature"


@pytest.mark.parametrize(
    ("offset", "words"), [(-360, "s old"), (360, "s in the future")], ids=["6min-old", "6min-ahead"]
)
def test_timestamp_outside_five_minutes_is_stale(offset: int, words: str) -> None:
    ts = NOW + offset
    headers = svix_headers(svix_entry(KEY_OLD, ts=ts), ts=ts)
    result = verify_standard_webhooks(headers, BODY, [SECRET_OLD], now=NOW)
    assert (result.ok, result.reason) == (False, "stale_timestamp")
    assert f"360 {words}" in result.message


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_timestamp_within_five_minutes_passes(offset: int) -> None:
    ts = NOW + offset
    headers = svix_headers(svix_entry(KEY_OLD, ts=ts), ts=ts)
    assert verify_standard_webhooks(headers, BODY, [SECRET_OLD], now=NOW).ok


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_each_missing_header_is_named(missing: str) -> None:
    headers = svix_headers(svix_entry(KEY_OLD))
    del headers[missing]
    result = verify_standard_webhooks(headers, BODY, [SECRET_OLD], now=NOW)
    assert (result.ok, result.reason) == (False, "missing_signature")
    assert f"missing {missing} header" in result.message


def test_no_headers_at_all_is_missing_signature() -> None:
    result = verify_standard_webhooks({}, BODY, [SECRET_OLD], now=NOW)
    assert (result.ok, result.reason) == (False, "missing_signature")


@pytest.mark.parametrize(
    ("signature", "ts", "reason"),
    [
        ("v1,not*base64!", NOW, "malformed_signature"),
        ("v2," + base64.b64encode(b"x" * 32).decode(), NOW, "malformed_signature"),
        ("justastring", NOW, "malformed_signature"),
        ("   ", NOW, "missing_signature"),
        (None, "yesterday", "malformed_signature"),
        (None, "-5", "malformed_signature"),
        (None, "1.5e9", "malformed_signature"),
    ],
    ids=[
        "bad-base64",
        "unknown-version",
        "no-comma",
        "blank",
        "word-ts",
        "negative-ts",
        "float-ts",
    ],
)
def test_malformed_headers_fail(signature: str | None, ts: int | str, reason: str) -> None:
    headers = svix_headers(svix_entry(KEY_OLD) if signature is None else signature, ts=ts)
    result = verify_standard_webhooks(headers, BODY, [SECRET_OLD], now=NOW)
    assert (result.ok, result.reason) == (False, reason)


def test_no_configured_secret_never_passes() -> None:
    result = verify_standard_webhooks(svix_headers(svix_entry(KEY_OLD)), BODY, [], now=NOW)
    assert (result.ok, result.reason) == (False, "no_secret")


def test_unusable_configured_secret_is_skipped_not_fatal() -> None:
    headers = svix_headers(svix_entry(KEY_OLD))
    assert verify_standard_webhooks(headers, BODY, ["whsec_***", SECRET_OLD], now=NOW).ok
    assert not verify_standard_webhooks(headers, BODY, ["whsec_***"], now=NOW).ok


def test_default_clock_is_now() -> None:
    import time

    ts = int(time.time())
    headers = svix_headers(svix_entry(KEY_OLD, ts=ts), ts=ts)
    assert verify_standard_webhooks(headers, BODY, [SECRET_OLD]).ok
    old = ts - 3600
    stale = svix_headers(svix_entry(KEY_OLD, ts=old), ts=old)
    assert verify_standard_webhooks(stale, BODY, [SECRET_OLD]).reason == "stale_timestamp"


# --- GitHub --------------------------------------------------------------------------------

GH_SECRET = "It's a Secret to Everybody"


def test_github_valid_signature_passes() -> None:
    # GitHub's documented example: this secret and body give this exact signature.
    body = b"Hello, World!"
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hex_hmac(GH_SECRET, body) == expected
    result = verify_github({"X-Hub-Signature-256": f"sha256={expected}"}, body, [GH_SECRET])
    assert (result.ok, result.reason) == (True, "ok")


def test_github_invalid_signature_fails() -> None:
    wrong = {"X-Hub-Signature-256": f"sha256={hex_hmac('another secret')}"}
    assert verify_github(wrong, BODY, [GH_SECRET]).reason == "invalid_signature"
    tampered = {"X-Hub-Signature-256": f"sha256={hex_hmac(GH_SECRET)}"}
    assert verify_github(tampered, BODY + b" ", [GH_SECRET]).reason == "invalid_signature"


def test_github_missing_signature_fails_and_sha1_only_is_explained() -> None:
    assert verify_github({}, BODY, [GH_SECRET]).reason == "missing_signature"
    sha1 = hmac.new(GH_SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    result = verify_github({"X-Hub-Signature": f"sha1={sha1}"}, BODY, [GH_SECRET])
    assert result.reason == "missing_signature"
    assert "SHA-1" in result.message


@pytest.mark.parametrize(
    "value",
    [
        f"sha1={hex_hmac(GH_SECRET)}",
        hex_hmac(GH_SECRET),  # GitHub always sends the prefix
        "sha256=xyz",
        f"sha256={hex_hmac(GH_SECRET)[:-2]}",
    ],
    ids=["sha1-prefix", "no-prefix", "not-hex", "short"],
)
def test_github_wrong_prefix_or_shape_is_malformed(value: str) -> None:
    result = verify_github({"X-Hub-Signature-256": value}, BODY, [GH_SECRET])
    assert (result.ok, result.reason) == (False, "malformed_signature")


def test_github_rotation_accepts_either_secret() -> None:
    headers = {"x-hub-signature-256": f"sha256={hex_hmac('new secret')}"}
    result = verify_github(headers, BODY, [GH_SECRET, "new secret"])
    assert (result.ok, result.secret_index) == (True, 1)


# --- generic HMAC ------------------------------------------------------------------------

GENERIC_SECRET = "s3cr3t-shared-with-acme"


@pytest.mark.parametrize("prefix", ["", "sha256=", "SHA256="])
def test_generic_valid_signature_with_or_without_prefix(prefix: str) -> None:
    headers = {"X-Signature": prefix + hex_hmac(GENERIC_SECRET)}
    assert verify_hmac(headers, BODY, [GENERIC_SECRET]).ok


def test_generic_uppercase_hex_passes() -> None:
    headers = {"X-Signature": hex_hmac(GENERIC_SECRET).upper()}
    assert verify_hmac(headers, BODY, [GENERIC_SECRET]).ok


def test_generic_invalid_signature_fails() -> None:
    headers = {"X-Signature": hex_hmac("someone else")}
    assert verify_hmac(headers, BODY, [GENERIC_SECRET]).reason == "invalid_signature"
    good = {"X-Signature": hex_hmac(GENERIC_SECRET)}
    assert verify_hmac(good, BODY[:-1], [GENERIC_SECRET]).reason == "invalid_signature"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_signature"),
        ({"X-Signature": "  "}, "missing_signature"),
        ({"X-Signature": f"md5={hex_hmac(GENERIC_SECRET)}"}, "malformed_signature"),
        ({"X-Signature": "zz" * 32}, "malformed_signature"),
        (
            {"X-Signature": base64.b64encode(bytes.fromhex(hex_hmac(GENERIC_SECRET))).decode()},
            "malformed_signature",
        ),
    ],
    ids=["absent", "blank", "md5-prefix", "not-hex", "base64"],
)
def test_generic_missing_or_malformed(headers: dict[str, str], reason: str) -> None:
    result = verify_hmac(headers, BODY, [GENERIC_SECRET])
    assert (result.ok, result.reason) == (False, reason)


def test_generic_without_secret_never_passes() -> None:
    headers = {"X-Signature": hex_hmac("")}  # even a signature made with the empty key
    assert verify_hmac(headers, BODY, []).reason == "no_secret"


def test_digests_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scheme compares digests with hmac.compare_digest, never with ==."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # looked up at call time
    assert verify_hmac({"X-Signature": hex_hmac(GENERIC_SECRET)}, BODY, [GENERIC_SECRET]).ok
    assert verify_github(
        {"X-Hub-Signature-256": f"sha256={hex_hmac(GH_SECRET)}"}, BODY, [GH_SECRET]
    ).ok
    assert verify_standard_webhooks(
        svix_headers(svix_entry(KEY_OLD)), BODY, [SECRET_OLD], now=NOW
    ).ok
    assert len(calls) == 3
    assert all(len(a) == len(b) == 32 for a, b in calls)
