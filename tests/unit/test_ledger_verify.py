"""ledger.verify: an exported ledger verifies, and every kind of tampering is caught and named."""

import base64
import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from ledger import verify as verify_module
from ledger.canonical import b64url, b64url_decode, canonical_json
from ledger.checkpoint import parse_checkpoint, sign_checkpoint
from ledger.entry import GENESIS_PREV, build_entry
from ledger.errors import ExportUnreadableError, LedgerVerificationError
from ledger.export import export
from ledger.keys import Signer
from ledger.merkle import leaf_hash, root_of
from ledger.store import append, create_schema, cut_checkpoint
from ledger.verify import verify_export

SIGNER_A = Signer(Ed25519PrivateKey.from_private_bytes(bytes([0xA1]) * 32))
SIGNER_B = Signer(Ed25519PrivateKey.from_private_bytes(bytes([0xB2]) * 32))  # after a rotation
FOREIGN = Signer(Ed25519PrivateKey.from_private_bytes(bytes([0xC3]) * 32))  # not in keys.json
T0 = datetime(2026, 11, 21, 20, 10, tzinfo=UTC)
TYPES = ["participant.registered", "contract.finalized", "exchange.decided"]
SIZE = 5
ROTATE_AT = 4  # entries 1-3 are signed by key A (3 announces key B), 4-5 by key B
KEY_ROTATED = "ledger.key-rotated"


def make_export(out: Path, size: int = SIZE) -> Path:
    """Append `size` entries to a fresh SQLite ledger and export it to `out`."""
    engine = create_engine(f"sqlite:///{out.parent / (out.name + '.db')}")
    create_schema(engine)
    with engine.begin() as conn:
        for i in range(1, size + 1):
            rotation = i == ROTATE_AT - 1
            append(
                conn,
                type=KEY_ROTATED if rotation else TYPES[(i - 1) % len(TYPES)],
                data={"i": i, "key": SIGNER_B.public_jwk(), "previous": SIGNER_A.kid}
                if rotation
                else {"i": i, "note": "数据可用不可见"},
                time=T0 + timedelta(seconds=i),
                signer=SIGNER_A if i < ROTATE_AT else SIGNER_B,
            )
        export(
            conn,
            out,
            public_jwks=[SIGNER_A.public_jwk(), SIGNER_B.public_jwk()],
            signer=SIGNER_B,
            origin="test.dsgw/ledger",
            now=T0 + timedelta(hours=1),
        )
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_export(tmp_path_factory.mktemp("pristine") / "export")


@pytest.fixture
def folder(pristine, tmp_path) -> Path:
    """A fresh copy of the pristine export, to tamper with."""
    return Path(shutil.copytree(pristine, tmp_path / "export"))


def read_entries(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "entries.jsonl").read_text().splitlines()]


def write_entries(folder: Path, entries: list[dict]) -> None:
    """Write entries back canonically, so that only the tampered value differs."""
    lines = b"".join(canonical_json(e) + b"\n" for e in entries)
    (folder / "entries.jsonl").write_bytes(lines)


def rehash(entry: dict) -> None:
    """Recompute the hash of a tampered body, as an attacker without the private key can."""
    entry["hash"] = hashlib.sha256(canonical_json(entry["body"])).hexdigest()


def caught(folder: Path, **kwargs) -> LedgerVerificationError:
    with pytest.raises(LedgerVerificationError) as info:
        verify_export(folder, **kwargs)
    return info.value


# -- what verifies ------------------------------------------------------------------------------


def test_fresh_export_verifies_and_reports_what_it_holds(pristine):
    entries = read_entries(pristine)
    report = verify_export(pristine)
    assert report.size == SIZE
    assert report.head == entries[-1]["hash"]
    assert report.first_time == "2026-11-21T20:10:01.000000Z"
    assert report.last_time == "2026-11-21T20:10:05.000000Z"
    assert report.kids == tuple(sorted([SIGNER_A.kid, SIGNER_B.kid]))
    assert report.types == {
        "participant.registered": 2,
        "contract.finalized": 2,
        KEY_ROTATED: 1,
    }
    assert report.origin == "test.dsgw/ledger"
    assert report.exported_at == "2026-11-21T21:10:00.000000Z"


def test_export_of_an_empty_ledger_verifies_with_the_genesis_head(tmp_path):
    report = verify_export(make_export(tmp_path / "empty", size=0))
    assert (report.size, report.head, report.first_time) == (0, GENESIS_PREV, None)
    assert (tmp_path / "empty" / "entries.jsonl").read_bytes() == b""


def test_verification_trusting_the_right_kids_passes(pristine):
    assert verify_export(pristine, trusted_kids=[SIGNER_A.kid, SIGNER_B.kid]).size == SIZE


def test_progress_is_reported_during_and_at_the_end(pristine, monkeypatch):
    monkeypatch.setattr(verify_module, "PROGRESS_EVERY", 2)
    seen: list[int] = []
    verify_export(pristine, progress=seen.append)
    assert seen == [2, 4, 5]


# -- entries --------------------------------------------------------------------------------------

TAMPERED_VALUES = {
    "seq": lambda body: body["seq"] + 10,
    "v": lambda body: 2,
    "time": lambda body: "2026-11-21T20:09:59.999999Z",
    "type": lambda body: "participant.revoked",
    "data": lambda body: {**body["data"], "i": 999},
    "prev": lambda body: "f" * 64,
    "kid": lambda body: SIGNER_B.kid if body["kid"] == SIGNER_A.kid else SIGNER_A.kid,
}
CHECK_CATCHING = {
    "seq": "seq",
    "v": "version",
    "time": "hash",
    "type": "hash",
    "data": "hash",
    "prev": "chain",
    "kid": "hash",
}


@pytest.mark.parametrize("seq", [1, 3, SIZE])
@pytest.mark.parametrize("member", sorted(TAMPERED_VALUES))
def test_changing_any_body_value_is_caught_at_that_entry(folder, member, seq):
    entries = read_entries(folder)
    body = entries[seq - 1]["body"]
    body[member] = TAMPERED_VALUES[member](body)
    write_entries(folder, entries)

    err = caught(folder)
    assert (err.seq, err.check) == (seq, CHECK_CATCHING[member])
    assert str(err).startswith(f"entry {seq}: check '{CHECK_CATCHING[member]}' failed: expected ")


@pytest.mark.parametrize("seq", [1, 3, SIZE])
@pytest.mark.parametrize("member", ["time", "type", "data", "kid"])
def test_a_tampered_body_with_a_recomputed_hash_fails_its_signature(folder, member, seq):
    entries = read_entries(folder)
    body = entries[seq - 1]["body"]
    body[member] = TAMPERED_VALUES[member](body)
    rehash(entries[seq - 1])
    write_entries(folder, entries)
    # A later entry naming another key than the active one breaks the key chain first.
    expected = "key-chain" if member == "kid" and seq > 1 else "signature"
    assert (caught(folder).seq, caught(folder).check) == (seq, expected)


def test_changed_hash_is_caught_with_the_recomputed_and_the_stored_value(folder):
    entries = read_entries(folder)
    right = entries[2]["hash"]
    entries[2]["hash"] = "0" * 64
    write_entries(folder, entries)
    err = caught(folder)
    assert (err.seq, err.check, err.expected, err.found) == (3, "hash", right, "0" * 64)
    assert str(err) == f"entry 3: check 'hash' failed: expected {right}, found {'0' * 64}"


def test_hash_and_next_prev_changed_together_are_still_caught(folder):
    entries = read_entries(folder)
    entries[1]["hash"] = entries[2]["body"]["prev"] = "ab" * 32
    write_entries(folder, entries)
    assert (caught(folder).seq, caught(folder).check) == (2, "hash")


@pytest.mark.parametrize("seq", [1, SIZE])
def test_changed_signature_is_caught(folder, seq):
    entries = read_entries(folder)
    sig = entries[seq - 1]["sig"]
    entries[seq - 1]["sig"] = ("B" if sig[0] == "A" else "A") + sig[1:]
    write_entries(folder, entries)
    err = caught(folder)
    assert (err.seq, err.check) == (seq, "signature")


def test_signature_with_altered_unused_base64_bits_is_caught(folder):
    # 64 bytes take 86 base64url characters; the last one carries 4 unused bits. A lenient
    # decoder would read 'x' + 1 as the same signature and let the change through.
    entries = read_entries(folder)
    sig = entries[0]["sig"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    entries[0]["sig"] = sig[:-1] + alphabet[alphabet.index(sig[-1]) ^ 1]
    write_entries(folder, entries)
    assert (caught(folder).seq, caught(folder).check) == (1, "signature")


def test_swapped_lines_are_caught_at_the_first_moved_entry(folder):
    entries = read_entries(folder)
    entries[1], entries[3] = entries[3], entries[1]
    write_entries(folder, entries)
    err = caught(folder)
    assert (err.seq, err.check, err.expected, err.found) == (2, "seq", "2", "4")


def test_deleted_middle_line_is_caught_by_the_sequence(folder):
    entries = read_entries(folder)
    del entries[2]
    write_entries(folder, entries)
    assert (caught(folder).seq, caught(folder).check) == (3, "seq")


def test_truncation_is_caught_by_the_signed_manifest(folder):
    entries = read_entries(folder)
    write_entries(folder, entries[:-1])
    err = caught(folder)
    assert (err.seq, err.check) == (None, "manifest-size")
    assert (err.expected, err.found) == (f"{SIZE} entries", f"{SIZE - 1} entries")
    assert str(err).startswith("manifest.json: check 'manifest-size' failed")


def test_entry_signed_by_a_key_not_in_keys_json_is_caught(folder):
    entries = read_entries(folder)
    forged = build_entry(
        seq=SIZE + 1,
        time=T0 + timedelta(minutes=1),
        type="exchange.decided",
        data={"allow": True},
        prev=entries[-1]["hash"],
        signer=FOREIGN,
    )
    write_entries(folder, [*entries, forged.to_json()])
    err = caught(folder)
    assert (err.seq, err.check, err.found) == (SIZE + 1, "kid", FOREIGN.kid)


def test_key_removed_from_keys_json_fails_the_first_entry_it_signed(folder):
    keys = json.loads((folder / "keys.json").read_text())
    keys["keys"] = [k for k in keys["keys"] if k["kid"] != SIGNER_A.kid]
    (folder / "keys.json").write_text(json.dumps(keys))
    assert (caught(folder).seq, caught(folder).check) == (1, "kid")


def test_untrusted_first_key_fails_even_when_keys_json_lists_it(pristine):
    err = caught(pristine, trusted_kids=[SIGNER_B.kid])
    assert (err.seq, err.check, err.found) == (1, "kid", SIGNER_A.kid)


def test_trusting_the_first_key_is_enough_keys_follow_the_rotation_chain(pristine):
    assert verify_export(pristine, trusted_kids=[SIGNER_A.kid]).size == SIZE


@pytest.mark.parametrize(
    "line, why",
    [
        (b"this is not json\n", "not JSON"),
        (b'{"body":{},"hash":"x","sig":"y"}\n', None),  # parses, but is no entry: 'seq'
        (b"[1,2]\n", "not an object"),
        (b'{"body":{"seq":1},"body":{"seq":1},"hash":"h","sig":"s"}\n', "duplicate"),
        (b'{"body":1,"hash":"h","sig":"s"}\n', "body not an object"),
        (b'{"body":{},"hash":"h","sig":"s","x":1}\n', "extra member"),
        (b"\xff\xfe\n", "not UTF-8"),
    ],
)
def test_unreadable_line_is_named_by_its_position(folder, line, why):
    entries = (folder / "entries.jsonl").read_bytes().splitlines(keepends=True)
    entries[2] = line
    (folder / "entries.jsonl").write_bytes(b"".join(entries))
    err = caught(folder)
    assert err.seq == 3
    assert err.check == ("seq" if why is None else "parse")


def test_line_that_is_not_in_canonical_form_is_caught(folder):
    lines = (folder / "entries.jsonl").read_bytes().splitlines(keepends=True)
    lines[1] = json.dumps(json.loads(lines[1]), indent=1).replace("\n", " ").encode() + b"\n"
    (folder / "entries.jsonl").write_bytes(b"".join(lines))
    assert (caught(folder).seq, caught(folder).check) == (2, "parse")


@pytest.mark.parametrize("ending", [b"", b"\r\n"])
def test_last_line_must_end_with_exactly_a_line_feed(folder, ending):
    data = (folder / "entries.jsonl").read_bytes()
    (folder / "entries.jsonl").write_bytes(data[:-1] + ending)
    assert (caught(folder).seq, caught(folder).check) == (SIZE, "parse")


def test_malformed_time_with_a_valid_signature_is_a_format_failure(folder):
    # What a buggy gateway could sign: the hash and signature hold, the body does not.
    entries = read_entries(folder)
    bad = build_entry(seq=1, time=T0, type="x.y", data={}, prev=GENESIS_PREV, signer=SIGNER_A)
    body = {**bad.body, "time": "2026-11-21 20:10:00"}
    canonical = canonical_json(body)
    entries[0] = {
        "body": body,
        "hash": hashlib.sha256(canonical).hexdigest(),
        "sig": b64url(SIGNER_A.sign(canonical)),
    }
    write_entries(folder, entries)
    assert (caught(folder).seq, caught(folder).check) == (1, "format")


# -- manifest and keys --------------------------------------------------------------------------


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.mark.parametrize(
    "member, value",
    [
        ("size", SIZE + 1),
        ("head", "a" * 64),
        ("origin", "elsewhere"),
        ("exported_at", "2030-01-01T00:00:00.000000Z"),
    ],
)
def test_tampered_manifest_fails_its_signature(folder, member, value):
    manifest = _manifest(folder)
    manifest[member] = value
    _write_manifest(folder, manifest)
    err = caught(folder)
    assert (err.seq, err.check) == (None, "manifest-signature")


def test_manifest_resigned_by_a_foreign_key_is_caught(folder):
    entries = read_entries(folder)
    write_entries(folder, entries[:-1])
    manifest = _manifest(folder)
    manifest.update(size=SIZE - 1, head=entries[-2]["hash"], kid=FOREIGN.kid)
    del manifest["sig"]
    manifest["sig"] = b64url(FOREIGN.sign(canonical_json(manifest)))
    _write_manifest(folder, manifest)
    err = caught(folder)
    assert (err.check, err.found) == ("manifest-kid", FOREIGN.kid)


def test_manifest_with_a_missing_member_is_caught(folder):
    manifest = _manifest(folder)
    del manifest["origin"]
    _write_manifest(folder, manifest)
    assert caught(folder).check == "manifest-format"


def test_keys_json_holding_a_private_key_is_refused(folder):
    keys = json.loads((folder / "keys.json").read_text())
    keys["keys"][0] = SIGNER_A.private_jwk()
    (folder / "keys.json").write_text(json.dumps(keys))
    err = caught(folder)
    assert (err.seq, err.check) == (None, "keys")
    assert "private key" in err.found


def test_keys_json_with_a_kid_that_is_not_the_thumbprint_is_refused(folder):
    keys = json.loads((folder / "keys.json").read_text())
    keys["keys"][1]["kid"] = SIGNER_A.kid
    (folder / "keys.json").write_text(json.dumps(keys))
    assert caught(folder).check == "keys"


# -- unreadable input ---------------------------------------------------------------------------


def test_missing_folder_is_unreadable_not_a_verification_failure(tmp_path):
    with pytest.raises(ExportUnreadableError, match="not a folder"):
        verify_export(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["entries.jsonl", "keys.json", "manifest.json"])
def test_missing_file_is_unreadable(folder, name):
    (folder / name).unlink()
    with pytest.raises(ExportUnreadableError, match=name):
        verify_export(folder)


# -- checkpoints, key chain, parallel signatures --------------------------------------------------


def make_checkpointed_export(out: Path) -> Path:
    """Entries 1-5 by key A (5 announces key B), 6 by key B; checkpoints at sizes 2, 4 and 6."""
    engine = create_engine(f"sqlite:///{out.parent / (out.name + '.db')}")
    create_schema(engine)
    with engine.begin() as conn:
        for i in range(1, 7):
            rotation = i == 5
            append(
                conn,
                type=KEY_ROTATED if rotation else "exchange.decided",
                data={"key": SIGNER_B.public_jwk(), "previous": SIGNER_A.kid}
                if rotation
                else {"i": i},
                time=T0 + timedelta(seconds=i),
                signer=SIGNER_A if i <= 5 else SIGNER_B,
            )
            if i % 2 == 0:
                cut_checkpoint(conn, signer=SIGNER_B if i > 5 else SIGNER_A, origin=ORIGIN, time=T0)
        export(
            conn,
            out,
            public_jwks=[SIGNER_A.public_jwk()],
            signer=SIGNER_B,
            origin=ORIGIN,
            now=T0 + timedelta(hours=1),
        )
    engine.dispose()
    return out


ORIGIN = "test.dsgw/ledger"


@pytest.fixture
def checkpointed(tmp_path) -> Path:
    return make_checkpointed_export(tmp_path / "cp")


def read_checkpoints(folder: Path) -> list[str]:
    lines = (folder / "checkpoints.jsonl").read_text().splitlines()
    return [json.loads(line)["note"] for line in lines]


def write_checkpoints(folder: Path, notes: list[str]) -> None:
    data = b"".join(canonical_json({"note": n}) + b"\n" for n in notes)
    (folder / "checkpoints.jsonl").write_bytes(data)


def test_checkpoints_are_verified_against_the_merkle_root(checkpointed):
    report = verify_export(checkpointed)
    assert (report.size, report.checkpoints) == (6, 3)
    entries = read_entries(checkpointed)
    leaves = [leaf_hash(canonical_json(e["body"])) for e in entries]
    assert report.root == root_of(leaves).hex()
    assert report.kids == tuple(sorted([SIGNER_A.kid, SIGNER_B.kid]))


def test_a_checkpoint_with_another_root_is_caught_even_when_properly_signed(checkpointed):
    notes = read_checkpoints(checkpointed)
    notes[1] = sign_checkpoint(ORIGIN, 4, bytes(32), SIGNER_A)
    write_checkpoints(checkpointed, notes)
    err = caught(checkpointed)
    assert (err.check, err.found) == ("checkpoint-root", "00" * 32)
    assert "line 2 (checkpoint of size 4)" in str(err)


def test_a_checkpoint_with_an_altered_note_fails_its_signature(checkpointed):
    notes = read_checkpoints(checkpointed)
    notes[0] = notes[0].replace(f"{ORIGIN}\n2\n", f"{ORIGIN}\n1\n")
    leaves = [leaf_hash(canonical_json(e["body"])) for e in read_entries(checkpointed)]
    notes[0] = notes[0].replace(notes[0].split("\n")[2], base64.b64encode(leaves[0]).decode())
    write_checkpoints(checkpointed, notes)
    assert caught(checkpointed).check == "checkpoint-signature"


def test_a_checkpoint_beyond_the_entries_reveals_a_truncation(checkpointed):
    # Drop entry 6 and re-sign the manifest with a stolen key B: checkpoint 6 still stands.
    entries = read_entries(checkpointed)[:-1]
    write_entries(checkpointed, entries)
    manifest = json.loads((checkpointed / "manifest.json").read_text())
    manifest.update(size=5, head=entries[-1]["hash"])
    del manifest["sig"]
    manifest["sig"] = b64url(SIGNER_B.sign(canonical_json(manifest)))
    (checkpointed / "manifest.json").write_text(json.dumps(manifest))
    assert caught(checkpointed).check == "checkpoint-size"


def test_a_checkpoint_signed_by_a_retired_key_after_its_retirement_is_caught(checkpointed):
    notes = read_checkpoints(checkpointed)
    root6 = parse_checkpoint(notes[2]).root
    notes[2] = sign_checkpoint(ORIGIN, 6, root6, SIGNER_A)
    write_checkpoints(checkpointed, notes)
    err = caught(checkpointed)
    assert (err.check, err.found) == ("checkpoint-kid", f"{SIGNER_A.kid}, retired at entry 5")


def test_a_reordered_or_garbled_checkpoints_file_is_caught(checkpointed):
    notes = read_checkpoints(checkpointed)
    write_checkpoints(checkpointed, [notes[1], notes[0], notes[2]])
    assert caught(checkpointed).check == "checkpoint-format"
    (checkpointed / "checkpoints.jsonl").write_text('{"note": "no note"}\n')
    assert caught(checkpointed).check == "checkpoint-format"


def test_a_retired_key_signing_a_later_entry_is_caught(checkpointed):
    entries = read_entries(checkpointed)
    forged = build_entry(
        seq=7,
        time=T0 + timedelta(minutes=1),
        type="exchange.decided",
        data={"allow": True},
        prev=entries[-1]["hash"],
        signer=SIGNER_A,
    )
    write_entries(checkpointed, [*entries, forged.to_json()])
    err = caught(checkpointed)
    assert (err.seq, err.check) == (7, "key-chain")
    assert err.found == f"key {SIGNER_A.kid}, retired by the rotation at entry 5"


def test_a_forged_rotation_is_caught_even_without_entry_signatures(checkpointed):
    entries = read_entries(checkpointed)
    entries[4]["body"]["data"]["key"] = FOREIGN.public_jwk()
    rehash(entries[4])
    write_entries(checkpointed, entries)
    err = caught(checkpointed, signatures=False)
    assert (err.seq, err.check) == (5, "signature")


def test_a_rotation_announcing_a_private_key_is_caught(checkpointed):
    entries = read_entries(checkpointed)
    body = dict(entries[4]["body"], data={"key": SIGNER_B.private_jwk(), "previous": SIGNER_A.kid})
    canonical = canonical_json(body)
    entries[4] = {
        "body": body,
        "hash": hashlib.sha256(canonical).hexdigest(),
        "sig": b64url(SIGNER_A.sign(canonical)),
    }
    write_entries(checkpointed, entries)
    err = caught(checkpointed)
    assert (err.seq, err.check) == (5, "key-rotation")


def test_the_manifest_signed_by_a_retired_key_is_caught(checkpointed):
    manifest = json.loads((checkpointed / "manifest.json").read_text())
    manifest["kid"] = SIGNER_A.kid
    del manifest["sig"]
    manifest["sig"] = b64url(SIGNER_A.sign(canonical_json(manifest)))
    (checkpointed / "manifest.json").write_text(json.dumps(manifest))
    err = caught(checkpointed)
    assert err.check == "manifest-kid"
    assert "retired at entry 5" in err.found


@pytest.mark.parametrize("signatures, jobs", [(True, 2), (False, 1)])
def test_signature_modes_accept_a_good_export(checkpointed, signatures, jobs):
    report = verify_export(checkpointed, signatures=signatures, jobs=jobs)
    assert (report.size, report.signatures) == (6, signatures)


def test_parallel_signature_checking_reports_the_first_bad_signature(folder):
    entries = read_entries(folder)
    for seq in (2, 5):
        sig = b64url_decode(entries[seq - 1]["sig"])
        entries[seq - 1]["sig"] = b64url(bytes([sig[0] ^ 1]) + sig[1:])
    write_entries(folder, entries)
    err = caught(folder, jobs=2)
    assert (err.seq, err.check) == (2, "signature")
    assert verify_export(folder, signatures=False).size == SIZE


def test_without_entry_signatures_a_body_tamper_is_still_caught_by_the_chain(folder):
    entries = read_entries(folder)
    entries[1]["body"]["data"]["i"] = 999
    rehash(entries[1])
    write_entries(folder, entries)
    assert (caught(folder, signatures=False).seq, caught(folder, signatures=False).check) == (
        3,
        "chain",
    )
