"""The worked example of specs/ledger.md and the export shipped in specs/test-vectors/ledger-small.

Both are made by `build_small_export` from a fixed key (32 bytes of 0x01) and fixed times; the
tests rebuild them and compare byte for byte. To rewrite the shipped files after a deliberate
format change:  .venv/bin/python tests/unit/test_ledger_vectors.py --write
"""

import hashlib
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # when run as a script

from ledger.canonical import b64url, canonical_json  # noqa: E402
from ledger.errors import LedgerVerificationError  # noqa: E402
from ledger.export import export  # noqa: E402
from ledger.keys import Signer  # noqa: E402
from ledger.store import append, create_schema  # noqa: E402
from ledger.verify import verify_export  # noqa: E402

SPEC = REPO / "specs" / "ledger.md"
VECTOR_DIR = REPO / "specs" / "test-vectors" / "ledger-small"
SEED = bytes([0x01]) * 32
ORIGIN = "example.dsgw/ledger"
EXPORTED_AT = datetime(2026, 11, 21, 20, 15, tzinfo=UTC)
ENTRIES = [
    (
        datetime(2026, 11, 21, 20, 10, 0, 123456, tzinfo=UTC),
        "participant.registered",
        {"participant": "p-0001", "name": "示例数据有限公司", "roles": ["consumer"]},
    ),
    (
        datetime(2026, 11, 21, 20, 10, 1, tzinfo=UTC),
        "contract.finalized",
        {"contract": "c-0001", "parties": ["p-0001", "p-0002"], "price_fen": 150000},
    ),
    (
        datetime(2026, 11, 21, 20, 10, 2, 500000, tzinfo=UTC),
        "exchange.decided",
        {"contract": "c-0001", "allow": False, "reasons": ["quota exceeded"], "rows": 0},
    ),
]


def example_signer() -> Signer:
    return Signer(Ed25519PrivateKey.from_private_bytes(SEED))


def build_small_export(out_dir: Path) -> dict:
    """Write the example export to `out_dir` through the real store and export; return manifest."""
    signer = example_signer()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        create_schema(engine)
        with engine.begin() as conn:
            for time, type_, data in ENTRIES:
                append(conn, type=type_, data=data, time=time, signer=signer)
            manifest = export(
                conn,
                out_dir,
                public_jwks=[signer.public_jwk()],
                signer=signer,
                origin=ORIGIN,
                now=EXPORTED_AT,
            )
        engine.dispose()
    return manifest


def test_shipped_example_export_is_what_the_code_builds(tmp_path):
    build_small_export(tmp_path / "built")
    for name in ("entries.jsonl", "keys.json", "manifest.json"):
        assert (tmp_path / "built" / name).read_bytes() == (VECTOR_DIR / name).read_bytes(), name


def test_shipped_example_export_verifies():
    report = verify_export(VECTOR_DIR)
    assert (report.size, report.kids) == (3, (example_signer().kid,))


def test_spec_prints_the_example_key_bytes_hashes_and_signatures():
    spec = SPEC.read_text(encoding="utf-8")
    signer = example_signer()
    lines = (VECTOR_DIR / "entries.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    canonical = canonical_json(first["body"])
    manifest = json.loads((VECTOR_DIR / "manifest.json").read_text())
    signed = canonical_json({k: v for k, v in manifest.items() if k != "sig"})
    printed = {
        "seed": SEED.hex(),
        "public key": signer.public_key().public_bytes_raw().hex(),
        "x": signer.public_jwk()["x"],
        "thumbprint sha256": hashlib.sha256(
            canonical_json({"crv": "Ed25519", "kty": "OKP", "x": signer.public_jwk()["x"]})
        ).hexdigest(),
        "kid": signer.kid,
        "entry 1 canonical bytes": canonical.decode("utf-8"),
        "entry 1 byte count": f"{len(canonical)} bytes",
        "entry 1 hash": hashlib.sha256(canonical).hexdigest(),
        "entry 1 sig": b64url(signer.sign(canonical)),
        "entry 2 hash": json.loads(lines[1])["hash"],
        "head": manifest["head"],
        "manifest signing input": signed.decode("utf-8"),
        "manifest sig": manifest["sig"],
        "entries.jsonl line 1": lines[0],
    }
    missing = [name for name, value in printed.items() if value not in spec]
    assert missing == [], f"specs/ledger.md does not show the current {missing}"
    assert first["hash"] == printed["entry 1 hash"] and first["sig"] == printed["entry 1 sig"]


def _tampered_copy(tmp_path: Path, change) -> Path:
    folder = Path(shutil.copytree(VECTOR_DIR, tmp_path / "copy"))
    entries = [json.loads(line) for line in (folder / "entries.jsonl").read_text().splitlines()]
    manifest = json.loads((folder / "manifest.json").read_text())
    entries = change(entries, manifest) or entries
    (folder / "entries.jsonl").write_bytes(b"".join(canonical_json(e) + b"\n" for e in entries))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _rows(entries, manifest):
    entries[2]["body"]["data"]["rows"] = 1


def _rows_rehashed(entries, manifest):
    _rows(entries, manifest)
    entries[2]["hash"] = hashlib.sha256(canonical_json(entries[2]["body"])).hexdigest()


def _size(entries, manifest):
    manifest["size"] = 4


@pytest.mark.parametrize(
    "change, seq, check",
    [
        (_rows, 3, "hash"),
        (_rows_rehashed, 3, "signature"),
        (lambda entries, manifest: [entries[1], entries[0], entries[2]], 1, "seq"),
        (lambda entries, manifest: entries[:2], None, "manifest-size"),
        (_size, None, "manifest-signature"),
    ],
)
def test_spec_tampering_examples_fail_as_the_spec_says(tmp_path, change, seq, check):
    with pytest.raises(LedgerVerificationError) as info:
        verify_export(_tampered_copy(tmp_path, change))
    assert (info.value.seq, info.value.check) == (seq, check)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.argv[0]} --write   (rewrites {VECTOR_DIR})")
    VECTOR_DIR.mkdir(parents=True, exist_ok=True)
    print(json.dumps(build_small_export(VECTOR_DIR), indent=2))
