"""Export the ledger to a folder an auditor can verify offline (specs/ledger.md §5).

The folder holds entries.jsonl, keys.json and a signed manifest.json. Entries are streamed from
the database and re-checked on the way (seq, chain, hash), so a damaged database is reported
here rather than sealed under a fresh manifest signature.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.canonical import b64url, canonical_json, rfc3339
from ledger.entry import GENESIS_PREV, Entry
from ledger.errors import LedgerError, LedgerKeyError, LedgerVerificationError
from ledger.keys import Signer, public_jwk_of, public_key_from_jwk
from ledger.verify import CHECKPOINTS_FILE, ENTRIES_FILE, FORMAT, KEYS_FILE, MANIFEST_FILE

if TYPE_CHECKING:
    from sqlalchemy import Connection


def sign_manifest(*, size: int, head: str, signer: Signer, origin: str, now: datetime) -> dict:
    """Return the signed manifest of a ledger of `size` entries ending at `head`."""
    if not isinstance(origin, str) or not origin:
        raise ValueError("origin must be a non-empty string naming the gateway")
    manifest = {
        "format": FORMAT,
        "origin": origin,
        "size": size,
        "head": head,
        "exported_at": rfc3339(now),
        "kid": signer.kid,
    }
    manifest["sig"] = b64url(signer.sign(canonical_json(manifest)))
    return manifest


def write_export(
    out_dir: Path,
    entries: Iterable[Entry | dict],
    *,
    keys: list[dict],
    manifest: dict,
    checkpoints: Iterable[str] = (),
) -> None:
    """Write entries 1..manifest["size"], the public keys and the manifest into `out_dir`.

    Entries (Entry objects, or their JSON form as the API serves them) are streamed and
    re-checked on the way (seq, chain, hash) against each other and against the manifest, so a
    damaged source is reported here instead of being written under a valid-looking manifest.
    Files already in `out_dir` are replaced, manifest last.
    """
    keys = _public_keys(keys, None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    size, head_hash = manifest["size"], manifest["head"]
    entries_tmp = _tmp(out_dir / ENTRIES_FILE)
    try:
        used_kids: set[str] = set()
        prev, n = GENESIS_PREV, 0
        with open(entries_tmp, "wb") as out:
            for item in entries:
                entry = item if isinstance(item, Entry) else Entry(**item)
                n += 1
                body_bytes = entry.canonical
                digest = hashlib.sha256(body_bytes).hexdigest()
                if entry.seq != n:
                    raise LedgerVerificationError("seq", seq=n, expected=n, found=entry.seq)
                if entry.prev != prev:
                    raise LedgerVerificationError("chain", seq=n, expected=prev, found=entry.prev)
                if entry.hash != digest:
                    raise LedgerVerificationError("hash", seq=n, expected=digest, found=entry.hash)
                # The JCS of {"body", "hash", "sig"}: members in that order, body canonical,
                # hash (hex) and sig (base64url) need no escaping.
                out.write(b'{"body":' + body_bytes + b',"hash":"' + entry.hash.encode("ascii"))
                out.write(b'","sig":"' + entry.sig.encode("ascii") + b'"}\n')
                used_kids.add(entry.kid)
                prev = entry.hash
                if n == size:
                    break
            _sync(out)
        if n != size:
            raise LedgerVerificationError("seq", seq=n + 1, expected=n + 1, found="no entry")
        if prev != head_hash:
            raise LedgerVerificationError("chain", seq=n, expected=head_hash, found=prev)
        missing = used_kids - {jwk["kid"] for jwk in keys}
        if missing:
            raise LedgerError(
                f"entries are signed by keys not given in public_jwks: {', '.join(sorted(missing))}"
            )
        _write_json(out_dir / KEYS_FILE, {"keys": keys})
        _write_checkpoints(out_dir / CHECKPOINTS_FILE, checkpoints, size)
        os.replace(entries_tmp, out_dir / ENTRIES_FILE)
        _write_json(out_dir / MANIFEST_FILE, manifest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entries_tmp)


def export(
    conn: Connection,
    out_dir: Path,
    *,
    public_jwks: list[dict],
    signer: Signer,
    origin: str,
    now: datetime,
) -> dict:
    """Write the ledger up to its current head into `out_dir`; return the signed manifest.

    `public_jwks` are the public keys to publish in keys.json (the signer's is added if
    missing; private members are never written). Every key that signed an entry must be
    among them, else LedgerError.
    """
    from ledger import store  # SQLAlchemy stays out of the verifier's import path

    size, head_hash = store.head(conn)
    public_jwks = [*public_jwks, *store.key_chain(conn)]
    manifest = sign_manifest(size=size, head=head_hash, signer=signer, origin=origin, now=now)
    write_export(
        out_dir,
        store.iter_entries(conn, 1, size + 1),
        keys=_public_keys(public_jwks, signer),
        manifest=manifest,
        checkpoints=[cp["note"] for cp in store.iter_checkpoints(conn, upto=size)],
    )
    return manifest


def _public_keys(public_jwks: list[dict], signer: Signer | None) -> list[dict]:
    """Return the public members of the keys, deduplicated by kid, the signer's included."""
    keys: dict[str, dict] = {}
    for jwk in [*public_jwks, *([signer.public_jwk()] if signer else [])]:
        public = public_jwk_of(public_key_from_jwk(jwk))  # checks kty, crv and x
        if jwk.get("kid", public["kid"]) != public["kid"]:
            raise LedgerKeyError(
                f"a JWK claims kid {jwk['kid']!r} but its thumbprint is {public['kid']}"
            )
        keys.setdefault(public["kid"], public)
    return list(keys.values())


def _write_checkpoints(path: Path, notes: Iterable[str], size: int) -> None:
    """Write checkpoints.jsonl: one JCS {"note": ...} line per checkpoint of size <= `size`."""
    from ledger.checkpoint import parse_checkpoint

    lines = []
    for note in notes:
        if parse_checkpoint(note).size <= size:
            lines.append(canonical_json({"note": note}) + b"\n")
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as f:
            f.write(b"".join(lines))
            _sync(f)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_json(path: Path, obj: dict) -> None:
    """Write `obj` as indented JSON through a temporary file and an atomic rename."""
    tmp = _tmp(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
            _sync(f)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _sync(f) -> None:
    f.flush()
    os.fsync(f.fileno())
