"""Paging cursors: opaque, HMAC-SHA256-signed tokens, bound to what they page.

A cursor carries a position (rows already delivered) and is signed with the gateway's key
together with a `scope` (say, the transfer id and the consumer id), so a consumer can neither
forge an offset nor replay one cursor against another stream. The token is
`base64url(payload) "." base64url(mac)`, payload being compact JSON `{"o": offset, "v": 1}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from gateway.dataplane.errors import cursor_invalid

VERSION = 1
MAX_TOKEN = 512


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, scope: str, payload: bytes) -> bytes:
    return hmac.new(key, scope.encode() + b"\x00" + payload, hashlib.sha256).digest()


def encode_cursor(offset: int, *, key: bytes, scope: str) -> str:
    """Return the cursor for the page starting at row `offset` of the stream named by `scope`."""
    if offset < 0:
        raise ValueError("offset must be >= 0")
    payload = json.dumps({"o": offset, "v": VERSION}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(key, scope, payload))}"


def decode_cursor(token: str, *, key: bytes, scope: str) -> int:
    """Return the offset a cursor carries; the 400 problem when it is not one we issued for
    `scope` (malformed, altered, or issued for another stream)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1:
        raise cursor_invalid("the cursor is malformed")
    body, mac = token.split(".")
    try:
        payload, given = _unb64(body), _unb64(mac)
    except (ValueError, TypeError):
        raise cursor_invalid("the cursor is malformed") from None
    if not hmac.compare_digest(given, _mac(key, scope, payload)):
        raise cursor_invalid("the cursor was not issued for this stream")
    try:
        data = json.loads(payload)
        offset = data["o"]
    except (ValueError, KeyError, TypeError):
        raise cursor_invalid("the cursor is malformed") from None
    if data.get("v") != VERSION or not isinstance(offset, int) or offset < 0:
        raise cursor_invalid("the cursor is malformed")
    return offset
