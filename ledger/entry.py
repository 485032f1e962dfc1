"""Ledger entries: the body, its canonical bytes, hash and signature (specs/ledger.md §2)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from ledger.canonical import b64url, canonical_json, rfc3339
from ledger.keys import Signer

VERSION = 1
GENESIS_PREV = "0" * 64
BODY_MEMBERS = frozenset({"v", "seq", "time", "type", "data", "prev", "kid"})
# An entry type: 1 to 128 characters, letters, digits and . _ : - (e.g. participant.registered).
TYPE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
HASH_PATTERN = re.compile(r"[0-9a-f]{64}")


def entry_hash(body: dict) -> str:
    """Return the lowercase hex SHA-256 of the body's canonical (RFC 8785) bytes."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One ledger entry as stored and exported: {"body": ..., "hash": ..., "sig": ...}."""

    body: dict
    hash: str
    sig: str

    @property
    def seq(self) -> int:
        return self.body["seq"]

    @property
    def time(self) -> str:
        """The RFC 3339 UTC timestamp string, as signed."""
        return self.body["time"]

    @property
    def type(self) -> str:
        return self.body["type"]

    @property
    def data(self) -> dict:
        return self.body["data"]

    @property
    def prev(self) -> str:
        return self.body["prev"]

    @property
    def kid(self) -> str:
        return self.body["kid"]

    @cached_property
    def canonical(self) -> bytes:
        """The canonical bytes of the body: what `hash` digests and `sig` signs."""
        return canonical_json(self.body)

    def to_json(self) -> dict:
        """Return the exported form {"body", "hash", "sig"}."""
        return {"body": self.body, "hash": self.hash, "sig": self.sig}


def build_entry(
    *, seq: int, time: datetime, type: str, data: dict, prev: str, signer: Signer
) -> Entry:
    """Return the entry `seq` with the given contents, hashed and signed by `signer`.

    Raises ValueError for a seq below 1, a naive time, an ill-formed type or prev, or data that
    is not a JSON object representable in RFC 8785 (e.g. integers beyond 2**53 - 1).
    """
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"seq must be an integer >= 1, not {seq!r}")
    if not isinstance(type, str) or TYPE_PATTERN.fullmatch(type) is None:
        raise ValueError(
            f"entry type {type!r} must be 1 to 128 characters of A-Z a-z 0-9 . _ : - "
            "starting with a letter or digit"
        )
    if not isinstance(data, dict):
        raise ValueError(f"entry data must be a JSON object (dict), not {data.__class__.__name__}")
    if not isinstance(prev, str) or HASH_PATTERN.fullmatch(prev) is None:
        raise ValueError(f"prev must be 64 lowercase hex characters, not {prev!r}")
    return _entry_from_canonical(
        _canonical_body(seq, rfc3339(time), type, canonical_json(data), prev, signer.kid), signer
    )


def _canonical_body(seq: int, time: str, type: str, data: bytes, prev: str, kid: str) -> bytes:
    """Return JCS(body) from JCS(data) and the other members, which need no escaping.

    The members in JCS order are data, kid, prev, seq, time, type, v; kid (base64url), prev
    (hex), time (RFC 3339) and type (TYPE_PATTERN) are ASCII without quotes or backslashes, and
    seq and v are small integers, so only `data` needs the RFC 8785 serialiser. This is the
    bytes rfc8785.dumps(body) gives (tests/unit/test_ledger_entry.py checks it), in a fraction
    of the time: the serialiser is pure Python and runs under the ledger's head lock.
    """
    return b"".join(
        (
            b'{"data":',
            data,
            f',"kid":"{kid}","prev":"{prev}","seq":{seq},"time":"{time}","type":"{type}","v":'
            f"{VERSION}}}".encode("ascii"),
        )
    )


def _entry_from_canonical(canonical: bytes, signer: Signer) -> Entry:
    # The stored body is the canonical bytes read back: detached from the caller's objects (a
    # later change to `data` cannot make the entry disagree with its hash) and normalised
    # (tuples become lists, 2.0 becomes 2) exactly as a verifier will read it.
    entry = Entry(
        body=json.loads(canonical),
        hash=hashlib.sha256(canonical).hexdigest(),
        sig=b64url(signer.sign(canonical)),
    )
    entry.__dict__["canonical"] = canonical
    return entry
