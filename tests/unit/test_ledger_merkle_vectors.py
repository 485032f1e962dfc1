"""The Merkle, checkpoint, proof, receipt and key-rotation vectors of specs/ledger.md §15.

`build_merkle_vectors` appends seven entries (a genesis, five events, and a key rotation as
entry 6 followed by entry 7 signed by the new key) with fixed keys and times, cuts checkpoints
at sizes 4 and 7 and exports; it writes the export to specs/test-vectors/ledger-merkle/ and the
expected values (leaf hashes, roots, an inclusion proof, a consistency proof, a receipt) to
vectors.json there. Ed25519 signatures are deterministic, so the files are reproducible. After a
deliberate format change:  .venv/bin/python tests/unit/test_ledger_merkle_vectors.py --write
"""

import base64
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # when run as a script

from ledger.checkpoint import vkey  # noqa: E402
from ledger.export import export  # noqa: E402
from ledger.keys import Signer  # noqa: E402
from ledger.merkle import leaf_hash, memory_source, tree_root  # noqa: E402
from ledger.receipt import build_receipt, check_receipt  # noqa: E402
from ledger.store import (  # noqa: E402
    append,
    consistency_proof,
    create_schema,
    cut_checkpoint,
    get_checkpoint,
    inclusion_proof,
    iter_entries,
    rotate_key,
)
from ledger.verify import verify_export, verify_extension  # noqa: E402

VECTOR_DIR = REPO / "specs" / "test-vectors" / "ledger-merkle"
ORIGIN = "example.dsgw/ledger"
T0 = datetime(2026, 11, 21, 20, 10, tzinfo=UTC)
FIRST = Signer(Ed25519PrivateKey.from_private_bytes(bytes([0x01]) * 32))
SECOND = Signer(Ed25519PrivateKey.from_private_bytes(bytes([0x02]) * 32))
FILES = ("entries.jsonl", "keys.json", "manifest.json", "checkpoints.jsonl", "vectors.json")


def build_merkle_vectors(out_dir: Path) -> dict:
    """Write the export and vectors.json to `out_dir`; return the vectors."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        create_schema(engine)
        with engine.begin() as conn:
            at = iter(T0 + timedelta(seconds=s) for s in range(100))
            append(
                conn, type="ledger.genesis", data={"origin": ORIGIN, "key": FIRST.public_jwk()},
                time=next(at), signer=FIRST,
            )  # fmt: skip
            for i in range(2, 6):
                append(conn, type="exchange.decided", data={"i": i, "allow": i % 2 == 0},
                       time=next(at), signer=FIRST)  # fmt: skip
                if i == 4:
                    cut_checkpoint(conn, signer=FIRST, origin=ORIGIN, time=next(at))
            rotate_key(conn, old=FIRST, new=SECOND, time=next(at))
            append(conn, type="exchange.decided", data={"i": 7, "allow": True}, time=next(at),
                   signer=SECOND)  # fmt: skip
            cut_checkpoint(conn, signer=SECOND, origin=ORIGIN, time=next(at))
            export(conn, out_dir, public_jwks=[], signer=SECOND, origin=ORIGIN, now=next(at))
            entries = list(iter_entries(conn))
            leaves = [leaf_hash(e.canonical) for e in entries]
            source = memory_source(leaves)
            cp4, cp7 = get_checkpoint(conn, 4), get_checkpoint(conn, 7)
            inclusion = inclusion_proof(conn, 3, 7)
            consistency = consistency_proof(conn, 4, 7)
        engine.dispose()
    vectors = {
        "leaf_input": "the entry's canonical body bytes C (the 'body' of its line)",
        "leaf_hashes": [h.hex() for h in leaves],
        "roots": {str(n): tree_root(n, source).hex() for n in range(1, 8)},
        "checkpoints": {"4": cp4["note"], "7": cp7["note"]},
        "verifier_keys": {
            "first": vkey(ORIGIN, FIRST.public_key()),
            "second": vkey(ORIGIN, SECOND.public_key()),
        },
        "inclusion": {"seq": 3, "index": 2, "size": 7, "hashes": [h.hex() for h in inclusion]},
        "consistency": {"old_size": 4, "new_size": 7, "hashes": [h.hex() for h in consistency]},
        "receipt": build_receipt(
            entries[2].to_json(),
            {
                "checkpoint": cp7["note"],
                "index": 2,
                "size": 7,
                "hashes": [h.hex() for h in inclusion],
            },
        ),  # fmt: skip
    }
    (out_dir / "vectors.json").write_text(json.dumps(vectors, indent=2, ensure_ascii=False) + "\n")
    return vectors


def test_shipped_merkle_vectors_are_what_the_code_builds(tmp_path):
    build_merkle_vectors(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (VECTOR_DIR / name).read_bytes(), name


def test_shipped_merkle_vectors_verify():
    report = verify_export(VECTOR_DIR)
    vectors = json.loads((VECTOR_DIR / "vectors.json").read_text())
    assert (report.size, report.checkpoints, report.root) == (7, 2, vectors["roots"]["7"])
    assert report.kids == tuple(sorted([FIRST.kid, SECOND.kid]))
    keys = {FIRST.kid: FIRST.public_key(), SECOND.kid: SECOND.public_key()}
    assert check_receipt(vectors["receipt"], keys).checkpoint_size == 7
    assert verify_extension(VECTOR_DIR, VECTOR_DIR).new.size == 7


if __name__ == "__main__" and "--write" in sys.argv:
    shutil.rmtree(VECTOR_DIR, ignore_errors=True)
    VECTOR_DIR.mkdir(parents=True)
    build_merkle_vectors(VECTOR_DIR)
    print(f"wrote {VECTOR_DIR}")


def VECTORS() -> dict:  # noqa: N802 - reads like the constant it stands for
    return json.loads((VECTOR_DIR / "vectors.json").read_text())


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(VECTOR_DIR, tmp_path / "copy"))


def _caught(folder: Path):
    import pytest

    from ledger.errors import LedgerVerificationError

    with pytest.raises(LedgerVerificationError) as info:
        verify_export(folder)
    return info.value


def _notes(folder: Path) -> list[str]:
    return [json.loads(x)["note"] for x in (folder / "checkpoints.jsonl").read_text().splitlines()]


def _write_notes(folder: Path, notes: list[str]) -> None:
    from ledger.canonical import canonical_json

    data = b"".join(canonical_json({"note": n}) + b"\n" for n in notes)
    (folder / "checkpoints.jsonl").write_bytes(data)


def _entries(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "entries.jsonl").read_text().splitlines()]


def _write_entries(folder: Path, entries: list[dict]) -> None:
    from ledger.canonical import canonical_json

    (folder / "entries.jsonl").write_bytes(b"".join(canonical_json(e) + b"\n" for e in entries))


def test_the_failures_listed_in_the_spec_are_the_ones_reported(tmp_path):
    import hashlib

    from ledger.canonical import b64url, canonical_json
    from ledger.checkpoint import parse_checkpoint, sign_checkpoint

    folder = _copy(tmp_path / "a")
    notes = _notes(folder)
    notes[0] = sign_checkpoint(ORIGIN, 4, bytes(32), FIRST)
    _write_notes(folder, notes)
    assert _caught(folder).check == "checkpoint-root"

    folder = _copy(tmp_path / "b")
    notes = _notes(folder)
    root3 = base64.b64encode(bytes.fromhex(VECTORS()["roots"]["3"])).decode()
    text4 = notes[0].split("\n\n")[0]
    notes[0] = notes[0].replace(text4, f"{ORIGIN}\n3\n{root3}")
    _write_notes(folder, notes)
    assert _caught(folder).check == "checkpoint-signature"

    folder = _copy(tmp_path / "c")
    entries = _entries(folder)
    body = dict(entries[6]["body"], kid=FIRST.kid)
    c = canonical_json(body)
    entries[6] = {"body": body, "hash": hashlib.sha256(c).hexdigest(), "sig": b64url(FIRST.sign(c))}
    _write_entries(folder, entries)
    assert (_caught(folder).seq, _caught(folder).check) == (7, "key-chain")

    folder = _copy(tmp_path / "d")
    entries = _entries(folder)
    entries[5]["body"]["data"]["key"] = Signer.generate().public_jwk()
    entries[5]["hash"] = hashlib.sha256(canonical_json(entries[5]["body"])).hexdigest()
    _write_entries(folder, entries)
    assert (_caught(folder).seq, _caught(folder).check) == (6, "signature")

    folder = _copy(tmp_path / "e")
    notes = _notes(folder)
    notes[1] = sign_checkpoint(ORIGIN, 7, parse_checkpoint(notes[1]).root, FIRST)
    _write_notes(folder, notes)
    assert _caught(folder).check == "checkpoint-kid"

    folder = _copy(tmp_path / "f")
    entries = _entries(folder)[:-1]
    _write_entries(folder, entries)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(size=6, head=entries[-1]["hash"])
    del manifest["sig"]
    manifest["sig"] = b64url(SECOND.sign(canonical_json(manifest)))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert _caught(folder).check == "checkpoint-size"
