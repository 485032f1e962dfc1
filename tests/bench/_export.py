"""Build a large, valid export quickly for the benchmarks (not collected by pytest).

Entries carry ASCII-only data, so orjson with sorted keys is their RFC 8785 form; the result is
checked by the real verifier in the benchmarks themselves. Cached under $TMPDIR by size.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.canonical import b64url, rfc3339
from ledger.checkpoint import sign_checkpoint
from ledger.entry import GENESIS_PREV
from ledger.export import sign_manifest
from ledger.keys import Signer
from ledger.merkle import CompactRange, leaf_hash

SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32))
ORIGIN = "bench.dsgw/ledger"
T0 = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)
CHECKPOINT_EVERY = 10_000


def bench_export(size: int, *, folder: Path | None = None) -> Path:
    """Return a folder holding a verifiable export of `size` entries (built once, then cached)."""
    out = folder or Path(tempfile.gettempdir()) / f"dsgw-bench-export-{size}"
    if (out / "manifest.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    prev = GENESIS_PREV
    rng = CompactRange()
    notes = []
    with open(out / "entries.jsonl", "wb") as f:
        for seq in range(1, size + 1):
            body = {
                "v": 1,
                "seq": seq,
                "time": rfc3339(T0 + timedelta(milliseconds=seq)),
                "type": "exchange.decided",
                "data": {
                    "contract": f"c-{seq % 977:04d}",
                    "consumer": "p-0002",
                    "allow": seq % 13 != 0,
                    "rows": seq % 500,
                    "reasons": [] if seq % 13 else ["quota exceeded"],
                },
                "prev": prev,
                "kid": SIGNER.kid,
            }
            c = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
            h = hashlib.sha256(c).hexdigest()
            sig = b64url(SIGNER.sign(c))
            f.write(b'{"body":' + c + b',"hash":"' + h.encode() + b'","sig":"' + sig.encode())
            f.write(b'"}\n')
            rng.append_fast(leaf_hash(c))
            if seq % CHECKPOINT_EVERY == 0:
                notes.append(sign_checkpoint(ORIGIN, seq, rng.root(), SIGNER))
            prev = h
    with open(out / "checkpoints.jsonl", "wb") as f:
        for note in notes:
            f.write(orjson.dumps({"note": note}) + b"\n")
    (out / "keys.json").write_text(json.dumps({"keys": [SIGNER.public_jwk()]}))
    manifest = sign_manifest(size=size, head=prev, signer=SIGNER, origin=ORIGIN, now=T0)
    (out / "manifest.json").write_text(json.dumps(manifest))
    os.sync()
    return out
