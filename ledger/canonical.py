"""Canonical forms: RFC 8785 JSON, RFC 3339 UTC timestamps and unpadded base64url (RFC 4648 §5).

Everything the ledger hashes or signs goes through `canonical_json`; everything it reads back
goes through the strict parsers here, so that one value has exactly one accepted spelling.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

import rfc8785

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the ledger works without it
    orjson = None

# RFC 3339 profile of the ledger: UTC, exactly six fraction digits, upper-case 'T' and 'Z'.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def canonical_json(obj: object) -> bytes:
    """Return the RFC 8785 (JCS) serialisation of `obj` as UTF-8 bytes.

    Raises `rfc8785.CanonicalizationError` (a ValueError) for what JCS cannot represent:
    integers beyond ±(2**53 - 1), NaN and infinities, non-string keys, other Python types.
    """
    if orjson is not None and _plain(obj):
        try:
            return orjson.dumps(obj, option=_ORJSON)
        except orjson.JSONEncodeError:
            pass  # an integer beyond the safe range, a lone surrogate, too deep: JCS says
    return rfc8785.dumps(obj)


# For values made only of dicts with string keys, lists, strings, integers, booleans and None,
# RFC 8785 is: keys sorted, no whitespace, strings as JSON.stringify escapes them (the short
# escapes for \b \t \n \f \r, \u00xx for the other controls, \" and \\, nothing else), integers
# in the safe range as their digits. orjson writes exactly that, about a hundred times faster
# than the rfc8785 package (tests/unit/test_canonical_fast.py checks the two byte for byte).
# Its key order is that of code points, JCS's that of UTF-16 code units: the two agree unless a
# key holds a character from U+D800 up, so such keys, floats (JCS's ECMAScript number form) and
# every other type take rfc8785's own path, which also raises what it raises.
_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER if orjson is not None else 0
_SCALARS = (str, int, bool, type(None))


def _plain(obj: object) -> bool:
    """Return whether `obj` is made only of what orjson writes as RFC 8785 does (see above)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            for key in value:
                if type(key) is not str or not (key.isascii() or max(key, default="") < "\ud800"):
                    return False
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind not in _SCALARS:
            return False
    return True


def rfc3339(dt: datetime) -> str:
    """Return `dt` in UTC as 'YYYY-MM-DDTHH:MM:SS.ffffffZ'; raise ValueError if it is naive."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()!r}: give a timezone-aware datetime")
    u = dt.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def parse_rfc3339(text: str) -> datetime:
    """Return the aware UTC datetime written by `rfc3339`; raise ValueError for anything else."""
    if not isinstance(text, str) or _RFC3339.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a UTC timestamp of the form YYYY-MM-DDTHH:MM:SS.ffffffZ")
    # fromisoformat checks the calendar (no February 30th, no hour 24).
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def b64url(data: bytes) -> str:
    """Return `data` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Return the bytes of unpadded base64url `text`; raise ValueError unless it is canonical.

    Canonical means: only the characters A-Z a-z 0-9 - _, no padding, no whitespace, and unused
    trailing bits zero. Without that last rule several strings would decode to the same bytes,
    and a changed signature string could still verify.
    """
    if not isinstance(text, str) or _B64URL.fullmatch(text) is None or len(text) % 4 == 1:
        raise ValueError(f"{text!r} is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - excluded by the checks above
        raise ValueError(f"{text!r} is not unpadded base64url") from exc
    if b64url(data) != text:
        raise ValueError(f"{text!r} is not the canonical base64url of its bytes (trailing bits)")
    return data
