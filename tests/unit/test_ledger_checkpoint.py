"""C2SP tlog-checkpoint signed notes: format, key hash, signature, and what tampering does."""

import base64
import hashlib

import pytest

from ledger.checkpoint import (
    CheckpointError,
    key_hash,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
    vkey,
)
from ledger.checkpoint import public_bytes as raw_public
from ledger.keys import Signer

SIGNER = Signer.from_jwk(
    {"kty": "OKP", "crv": "Ed25519", "d": base64.urlsafe_b64encode(b"\x01" * 32).decode()[:43]}
)
ROOT = hashlib.sha256(b"root").digest()
KEYS = {SIGNER.kid: SIGNER.public_key()}


def test_a_checkpoint_is_a_c2sp_signed_note():
    note = sign_checkpoint("example.dsgw/ledger", 42, ROOT, SIGNER)
    text, sig_line = note.split("\n\n")
    assert text == f"example.dsgw/ledger\n42\n{base64.b64encode(ROOT).decode()}"
    assert sig_line.startswith("\u2014 example.dsgw/ledger ") and sig_line.endswith("\n")
    raw = base64.b64decode(sig_line.split(" ")[2])
    public = raw_public(SIGNER.public_key())
    expected_hash = hashlib.sha256(b"example.dsgw/ledger\n\x01" + public).digest()[:4]
    assert raw[:4] == expected_hash == key_hash("example.dsgw/ledger", SIGNER.public_key())
    SIGNER.public_key().verify(raw[4:], (text + "\n").encode())
    cp, kid = verify_checkpoint(note, KEYS)
    assert (cp.origin, cp.size, cp.root, kid, cp.note) == (
        "example.dsgw/ledger",
        42,
        ROOT,
        SIGNER.kid,
        note,
    )
    assert vkey("example.dsgw/ledger", SIGNER.public_key()).startswith(
        f"example.dsgw/ledger+{expected_hash.hex()}+"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n: n.replace("\n42\n", "\n43\n"), "does not verify"),
        (lambda n: n.replace("example.dsgw/ledger\n", "other.dsgw/ledger\n", 1), "not signed by"),
        (lambda n: n.replace("\n\n", "\n"), "blank line"),
        (lambda n: n.rstrip("\n"), "blank line"),
        (lambda n: n.replace("\n42\n", "\n042\n"), "size"),
        (lambda n: n.replace("\u2014", "-"), "signature line"),
    ],
)
def test_a_changed_checkpoint_is_refused(change, message):
    note = sign_checkpoint("example.dsgw/ledger", 42, ROOT, SIGNER)
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(change(note), KEYS)


def test_a_checkpoint_by_an_unknown_key_is_refused_naming_the_keys():
    note = sign_checkpoint("example.dsgw/ledger", 1, ROOT, Signer.generate())
    with pytest.raises(CheckpointError, match=SIGNER.kid):
        verify_checkpoint(note, KEYS)


def test_extension_lines_and_foreign_cosignatures_are_read_past():
    note = sign_checkpoint("example.dsgw/ledger", 7, ROOT, SIGNER)
    witness = "\u2014 witness.example " + base64.b64encode(b"\x00" * 68).decode() + "\n"
    cp, kid = verify_checkpoint(witness.join([note, ""]), KEYS)
    assert (cp.size, kid) == (7, SIGNER.kid)
    assert parse_checkpoint(note).to_json()["root"] == ROOT.hex()
