"""Receipts: one entry, and its inclusion proof against a signed checkpoint (specs/ledger.md §12).

A receipt is a JSON object a participant keeps:

    {"format": "dsgw-receipt/1",
     "entry": {"body": ..., "hash": ..., "sig": ...},
     "inclusion": null | {"checkpoint": "<C2SP note>", "index": seq - 1, "size": N,
                          "hashes": ["<hex>", ...]}}

`check_receipt` needs only the gateway's public keys: the entry's hash and signature, and,
when the inclusion proof is there, the proof against the checkpoint's root and the checkpoint's
signature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.canonical import b64url_decode, canonical_json
from ledger.checkpoint import CheckpointError, verify_checkpoint
from ledger.errors import LedgerError
from ledger.keys import SIGNATURE_BYTES, verify_signature
from ledger.merkle import InvalidProofError, leaf_hash, verify_inclusion

RECEIPT_FORMAT = "dsgw-receipt/1"


class ReceiptError(LedgerError):
    """A receipt does not verify: `check` names what failed, with what was expected and found."""

    def __init__(self, check: str, *, expected: object = "", found: object = "") -> None:
        self.check = check
        self.expected = str(expected)
        self.found = str(found)
        super().__init__(f"receipt: check '{check}' failed: expected {expected}, found {found}")


@dataclass(frozen=True)
class ReceiptReport:
    seq: int
    hash: str
    kid: str
    type: str
    time: str
    checkpoint_size: int | None
    """The size of the checkpoint the entry is proven in, None without an inclusion proof."""

    def to_json(self) -> dict:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "kid": self.kid,
            "type": self.type,
            "time": self.time,
            "checkpoint_size": self.checkpoint_size,
        }


def build_receipt(entry: dict, inclusion: dict | None) -> dict:
    """Return the receipt of an entry's JSON form, with an inclusion proof or None."""
    return {"format": RECEIPT_FORMAT, "entry": entry, "inclusion": inclusion}


def check_receipt(receipt: object, keys: dict[str, Ed25519PublicKey]) -> ReceiptReport:
    """Check a receipt with the gateway's public keys (kid -> key); raise ReceiptError."""
    if not isinstance(receipt, dict) or receipt.get("format") != RECEIPT_FORMAT:
        raise ReceiptError(
            "format", expected=f'an object with "format": "{RECEIPT_FORMAT}"', found=_kind(receipt)
        )
    entry = receipt.get("entry")
    if not isinstance(entry, dict) or set(entry) != {"body", "hash", "sig"}:
        raise ReceiptError("format", expected="entry {body, hash, sig}", found=_kind(entry))
    body = entry["body"]
    if not isinstance(body, dict) or not isinstance(body.get("seq"), int):
        raise ReceiptError("format", expected="entry.body with an integer seq", found=_kind(body))
    try:
        canonical = canonical_json(body)
    except ValueError as exc:
        raise ReceiptError("format", expected="JSON RFC 8785 can represent", found=exc) from None
    digest = hashlib.sha256(canonical).hexdigest()
    if entry["hash"] != digest:
        raise ReceiptError("hash", expected=digest, found=entry["hash"])
    kid = body.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise ReceiptError("kid", expected=f"one of {', '.join(sorted(keys))}", found=kid)
    try:
        sig = b64url_decode(entry["sig"])
    except (ValueError, TypeError):
        sig = b""
    if len(sig) != SIGNATURE_BYTES or not verify_signature(key, sig, canonical):
        raise ReceiptError(
            "signature", expected=f"an Ed25519 signature by {kid}", found=entry["sig"]
        )
    inclusion = receipt.get("inclusion")
    size = None
    if inclusion is not None:
        size = _check_inclusion(inclusion, body["seq"], canonical, keys)
    return ReceiptReport(
        seq=body["seq"],
        hash=digest,
        kid=kid,
        type=str(body.get("type")),
        time=str(body.get("time")),
        checkpoint_size=size,
    )


def _check_inclusion(
    inclusion: object, seq: int, canonical: bytes, keys: dict[str, Ed25519PublicKey]
) -> int:
    if not isinstance(inclusion, dict) or set(inclusion) != {
        "checkpoint",
        "index",
        "size",
        "hashes",
    }:
        raise ReceiptError(
            "format", expected="inclusion {checkpoint, index, size, hashes}", found=_kind(inclusion)
        )
    try:
        cp, _ = verify_checkpoint(inclusion["checkpoint"], keys)
    except CheckpointError as exc:
        raise ReceiptError("checkpoint", expected=exc.expected, found=exc.found) from None
    if inclusion["index"] != seq - 1:
        raise ReceiptError("inclusion", expected=f"index {seq - 1}", found=inclusion["index"])
    if inclusion["size"] != cp.size:
        raise ReceiptError(
            "inclusion", expected=f"size {cp.size} (the checkpoint's)", found=inclusion["size"]
        )
    try:
        hashes = [bytes.fromhex(h) for h in inclusion["hashes"]]
    except (TypeError, ValueError):
        raise ReceiptError(
            "inclusion", expected="hashes as hex strings", found=_kind(inclusion["hashes"])
        ) from None
    try:
        verify_inclusion(leaf_hash(canonical), seq - 1, cp.size, hashes, cp.root)
    except InvalidProofError as exc:
        raise ReceiptError("inclusion", expected=exc.expected, found=exc.found) from None
    return cp.size


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object with " + (", ".join(sorted(map(str, value))) or "no members")
    return type(value).__name__


def check_consistency(proof: object, keys: dict[str, Ed25519PublicKey]) -> tuple[int, int]:
    """Check a consistency proof as GET /ledger/proofs/consistency serves it; return the sizes.

    Both checkpoints must verify under `keys` and the proof must join the older root to the
    newer one (RFC 9162 §2.1.4.2). Raises ReceiptError naming the check.
    """
    from ledger.merkle import verify_consistency

    members = {"old_checkpoint", "new_checkpoint", "hashes"}
    if not isinstance(proof, dict) or not members <= set(proof):
        raise ReceiptError("format", expected=", ".join(sorted(members)), found=_kind(proof))
    notes = []
    for name in ("old_checkpoint", "new_checkpoint"):
        try:
            notes.append(verify_checkpoint(proof[name], keys)[0])
        except CheckpointError as exc:
            raise ReceiptError("checkpoint", expected=exc.expected, found=exc.found) from None
    old, new = notes
    if old.origin != new.origin:
        raise ReceiptError("consistency", expected=f"origin {old.origin}", found=new.origin)
    try:
        hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    except (TypeError, ValueError):
        raise ReceiptError("format", expected="hashes as hex strings", found="other") from None
    try:
        verify_consistency(old.size, new.size, old.root, new.root, hashes)
    except InvalidProofError as exc:
        raise ReceiptError("consistency", expected=exc.expected, found=exc.found) from None
    return old.size, new.size
