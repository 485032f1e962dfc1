"""The verifier is exact where specs/ledger.md is: canonical lines only, the key chain's members,
checkpoints' files and notes, and what it names when NEW is shorter than OLD (issue 14, 16-18).

Every tampering here is re-signed with the key that was active, as the gateway itself (or a thief
of its key) could: only the rule under test can catch it.
"""

import base64
import hashlib
import json
import shutil
from pathlib import Path

import orjson
import pytest
import rfc8785
from sqlalchemy import create_engine

from ledger.canonical import b64url, canonical_json
from ledger.checkpoint import key_hash, parse_checkpoint, sign_checkpoint
from ledger.errors import LedgerVerificationError
from ledger.export import export
from ledger.store import append, create_schema
from ledger.verify import verify_export, verify_extension
from tests.unit.test_ledger_verify import (
    FOREIGN,
    ORIGIN,
    SIGNER_A,
    SIGNER_B,
    SIZE,
    T0,
    caught,
    make_checkpointed_export,
    make_export,
    read_checkpoints,
    read_entries,
    write_checkpoints,
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_export(tmp_path_factory.mktemp("pristine") / "export")


@pytest.fixture
def folder(pristine, tmp_path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "export"))


@pytest.fixture
def checkpointed(tmp_path) -> Path:
    return make_checkpointed_export(tmp_path / "cp")


def resign_manifest(folder: Path, signer, **changes) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    del manifest["sig"]
    manifest["sig"] = b64url(signer.sign(canonical_json(manifest)))
    (folder / "manifest.json").write_text(json.dumps(manifest))


def replace_last_body(folder: Path, body_bytes: bytes, signer=SIGNER_B) -> None:
    """Make the last line carry exactly `body_bytes`, hashed and signed as they are."""
    lines = (folder / "entries.jsonl").read_bytes().splitlines(keepends=True)
    digest = hashlib.sha256(body_bytes).hexdigest()
    sig = b64url(signer.sign(body_bytes))
    tail = b',"hash":"%s","sig":"%s"}\n' % (digest.encode(), sig.encode())
    lines[-1] = b'{"body":' + body_bytes + tail
    (folder / "entries.jsonl").write_bytes(b"".join(lines))
    resign_manifest(folder, signer, head=digest)


def last_body_with_data(folder: Path, data_bytes: bytes) -> bytes:
    body = read_entries(folder)[-1]["body"]
    canonical = canonical_json({**body, "data": {}})
    return canonical.replace(b'"data":{}', b'"data":' + data_bytes)


# -- 16: a line is exactly its RFC 8785 form -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"i":5.0}', id="5.0 for 5"),
        pytest.param(b'{"i":1e+16}', id="1e+16 for 10000000000000000"),
        pytest.param(b'{"i":-0.0}', id="-0.0 for 0"),
        pytest.param(b'{"i":9007199254740993}', id="an integer beyond 2^53"),
        pytest.param(b'{"i":-18446744073709551615}', id="an integer beyond 64 bits"),
        pytest.param(b'{"i":[1,2.50]}', id="a fraction in an array"),
        pytest.param(
            '{"\ufb01":2,"\U0001f600":1}'.encode(), id="members in code-point, not UTF-16, order"
        ),
        pytest.param(b'{"i":"\\u0041"}', id="an escape RFC 8785 does not use"),
        pytest.param(b'{"i":"\\u001F"}', id="an upper-case hex escape"),
    ],
)
def test_a_resigned_line_that_is_not_rfc8785_canonical_fails_parse(folder, data):
    replace_last_body(folder, last_body_with_data(folder, data))
    err = caught(folder)
    assert (err.seq, err.check) == (SIZE, "parse")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"i": 9007199254740991}, id="2^53 - 1"),
        pytest.param({"i": -9007199254740991}, id="-(2^53 - 1)"),
        pytest.param({"ratio": 0.5, "big": 1e21, "small": 1e-7}, id="floats"),
        pytest.param({"\ufb01": 2, "\U0001f600": 1, "名": "数据"}, id="UTF-16 member order"),
        pytest.param({"text": 'a,5.0 [1.5] ":2.5" \u2028 \x7f \x1f'}, id="look-alikes"),
    ],
)
def test_canonical_lines_that_need_the_full_check_still_verify(tmp_path, data):
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_schema(engine)
    with engine.begin() as conn:
        for i in range(1, 4):
            append(conn, type="x.y", data={**data, "n": i}, time=T0, signer=SIGNER_A)
        export(
            conn,
            tmp_path / "out",
            public_jwks=[SIGNER_A.public_jwk()],
            signer=SIGNER_A,
            origin=ORIGIN,
            now=T0,
        )
    engine.dispose()
    assert verify_export(tmp_path / "out").size == 3


def test_orjson_writes_every_string_as_rfc8785_does():
    """Why the fast path needs no test of strings: the two agree on every character."""
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    chars += [chr(c) for c in range(0x10000, 0x110000, 97)]
    for chunk in range(0, len(chars), 512):
        text = "".join(chars[chunk : chunk + 512])
        value = {text: [text, text[::-1]]}
        assert orjson.dumps(value) == rfc8785.dumps(value), repr(text[:20])


# -- 17: the key chain's members, keys' alg, the checkpoints file ----------------------------------


def resign_entry(folder: Path, seq: int, signer, **data_changes) -> None:
    """Change entry `seq`'s data and re-sign it; chain the later entries and the manifest on."""
    entries = read_entries(folder)
    signers = {SIGNER_A.kid: SIGNER_A, SIGNER_B.kid: SIGNER_B}
    for i, entry in enumerate(entries):
        body = entry["body"]
        if i + 1 == seq:
            body["data"] = {**body["data"], **data_changes}
            body["data"] = {k: v for k, v in body["data"].items() if v is not None}
        if i > 0:
            body["prev"] = entries[i - 1]["hash"]
        canonical = canonical_json(body)
        entry["hash"] = hashlib.sha256(canonical).hexdigest()
        entry["sig"] = b64url((signer if i + 1 == seq else signers[body["kid"]]).sign(canonical))
    (folder / "entries.jsonl").write_bytes(b"".join(canonical_json(e) + b"\n" for e in entries))
    resign_manifest(folder, SIGNER_B, head=entries[-1]["hash"])


ROTATION = 3  # entry 3 of make_export's log rotates key A to key B


@pytest.mark.parametrize(
    "previous", [None, FOREIGN.kid, SIGNER_B.kid, 1], ids=["missing", "foreign", "new key", "int"]
)
def test_a_rotation_with_a_wrong_or_missing_previous_fails_key_rotation(folder, previous):
    resign_entry(folder, ROTATION, SIGNER_A, previous=previous)
    if previous is None:
        assert "previous" not in read_entries(folder)[ROTATION - 1]["body"]["data"]
    err = caught(folder)
    assert (err.seq, err.check) == (ROTATION, "key-rotation")
    assert SIGNER_A.kid in err.expected


@pytest.mark.parametrize("alg", ["RS256", "ES256", "none", 1])
def test_a_rotation_key_with_another_alg_fails_key_rotation(folder, alg):
    resign_entry(folder, ROTATION, SIGNER_A, key={**SIGNER_B.public_jwk(), "alg": alg})
    err = caught(folder)
    assert (err.seq, err.check) == (ROTATION, "key-rotation")


def genesis_export(tmp_path: Path, jwk: dict) -> Path:
    engine = create_engine(f"sqlite:///{tmp_path / 'g.sqlite'}")
    create_schema(engine)
    with engine.begin() as conn:
        append(
            conn,
            type="ledger.genesis",
            data={"origin": ORIGIN, "key": jwk},
            time=T0,
            signer=SIGNER_A,
        )
        export(
            conn,
            tmp_path / "g",
            public_jwks=[SIGNER_A.public_jwk()],
            signer=SIGNER_A,
            origin=ORIGIN,
            now=T0,
        )
    engine.dispose()
    return tmp_path / "g"


@pytest.mark.parametrize("alg", ["RS256", "HS256", "none"])
def test_a_genesis_key_with_another_alg_fails_key_chain(tmp_path, alg):
    folder = genesis_export(tmp_path, {**SIGNER_A.public_jwk(), "alg": alg})
    err = caught(folder)
    assert (err.seq, err.check) == (1, "key-chain")
    assert alg in err.found


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519", None])
def test_a_genesis_key_with_eddsa_ed25519_or_no_alg_verifies(tmp_path, alg):
    jwk = {k: v for k, v in SIGNER_A.public_jwk().items() if k != "alg"}
    folder = genesis_export(tmp_path, jwk if alg is None else {**jwk, "alg": alg})
    assert verify_export(folder).size == 1


def test_a_checkpoints_file_without_its_final_line_feed_fails_checkpoint_format(checkpointed):
    path = checkpointed / "checkpoints.jsonl"
    path.write_bytes(path.read_bytes()[:-1])
    err = caught(checkpointed)
    assert err.check == "checkpoint-format"
    assert "line 3" in err.location and "line feed" in err.expected


def test_a_checkpoints_line_not_in_rfc8785_form_fails_checkpoint_format(checkpointed):
    notes = read_checkpoints(checkpointed)
    (checkpointed / "checkpoints.jsonl").write_text(
        "".join(json.dumps({"note": n}) + "\n" for n in notes)  # ", " and "\u2014" escapes
    )
    assert caught(checkpointed).check == "checkpoint-format"


# -- 18: the spec's other gaps ---------------------------------------------------------------------


def test_a_checkpoint_of_size_0_fails_checkpoint_format(checkpointed):
    empty = sign_checkpoint(ORIGIN, 0, hashlib.sha256().digest(), SIGNER_A)
    write_checkpoints(checkpointed, [empty, *read_checkpoints(checkpointed)])
    err = caught(checkpointed)
    assert (err.check, err.location) == ("checkpoint-format", "checkpoints.jsonl line 1")


def cosigned(note: str, signer) -> str:
    """Add `signer`'s signature line to `note` (after the ones it has)."""
    cp = parse_checkpoint(note)
    raw = key_hash(ORIGIN, signer.public_key()) + signer.sign(cp.text.encode())
    return note + f"\u2014 {ORIGIN} {base64.b64encode(raw).decode()}\n"


def test_a_checkpoint_signed_by_the_retired_and_the_active_key_verifies(checkpointed):
    notes = read_checkpoints(checkpointed)
    root6 = parse_checkpoint(notes[2]).root
    notes[2] = cosigned(sign_checkpoint(ORIGIN, 6, root6, SIGNER_A), SIGNER_B)  # retired first
    write_checkpoints(checkpointed, notes)
    report = verify_export(checkpointed)
    assert report.checkpoints == 3


def test_a_bad_signature_by_a_known_key_fails_even_beside_a_good_one(checkpointed):
    notes = read_checkpoints(checkpointed)
    cp = parse_checkpoint(notes[2])
    bad = key_hash(ORIGIN, SIGNER_A.public_key()) + bytes(64)
    notes[2] = notes[2] + f"\u2014 {ORIGIN} {base64.b64encode(bad).decode()}\n"
    write_checkpoints(checkpointed, notes)
    err = caught(checkpointed)
    assert err.check == "checkpoint-signature" and cp.size == 6
    assert SIGNER_A.kid in err.expected


def test_a_witness_cosignature_is_skipped(checkpointed):
    notes = read_checkpoints(checkpointed)
    raw = b"\x00\x01\x02\x03" + bytes(64)
    notes[0] += f"\u2014 witness.example/w1 {base64.b64encode(raw).decode()}\n"
    write_checkpoints(checkpointed, notes)
    assert verify_export(checkpointed).checkpoints == 3


def test_a_note_split_at_its_first_blank_line_keeps_the_rest_as_signature_lines(checkpointed):
    notes = read_checkpoints(checkpointed)
    text, _, sigs = notes[0].partition("\n\n")
    notes[0] = f"{text}\n\n\n{sigs}"  # a second blank line: not a signature line
    write_checkpoints(checkpointed, notes)
    assert caught(checkpointed).check == "checkpoint-format"


def test_keys_json_need_not_list_a_key_brought_in_by_rotation(checkpointed):
    (checkpointed / "keys.json").write_text(json.dumps({"keys": [SIGNER_A.public_jwk()]}))
    # key B, which signs entry 6, the checkpoint of size 6 and the manifest, is only in entry 5
    assert verify_export(checkpointed, trusted_kids=[SIGNER_A.kid]).kids == tuple(
        sorted([SIGNER_A.kid, SIGNER_B.kid])
    )


def test_a_leap_second_is_a_format_failure(folder):
    body = read_entries(folder)[-1]["body"]
    body["time"] = "2026-12-31T23:59:60.000000Z"
    replace_last_body(folder, canonical_json(body))
    err = caught(folder)
    assert (err.seq, err.check) == (SIZE, "format")


def test_when_new_is_shorter_than_old_the_first_missing_entry_is_named(pristine, tmp_path):
    old = make_export(tmp_path / "old", size=SIZE + 2)
    with pytest.raises(LedgerVerificationError) as info:
        verify_extension(old, pristine)
    err = info.value
    assert (err.check, err.seq) == ("consistency", SIZE + 1)
    assert err.location == f"entry {SIZE + 1} of OLD"


def test_a_shorter_new_that_also_differs_names_the_first_difference(tmp_path):
    old = make_export(tmp_path / "old", size=SIZE + 2)
    new = Path(shutil.copytree(make_export(tmp_path / "new"), tmp_path / "new2"))
    resign_entry(new, 2, SIGNER_A, i=99)
    with pytest.raises(LedgerVerificationError) as info:
        verify_extension(old, new)
    assert (info.value.check, info.value.seq) == ("consistency", 2)


def test_the_rotation_fixture_is_what_the_gateway_writes():
    """make_export's rotation carries data.previous like ledger.store.rotate_key's."""
    entries_file = Path(__file__).resolve().parents[2] / "specs/test-vectors/ledger-merkle"
    rotation = [
        json.loads(line)["body"]
        for line in (entries_file / "entries.jsonl").read_text().splitlines()
        if json.loads(line)["body"]["type"] == "ledger.key-rotated"
    ]
    assert set(rotation[0]["data"]) == {"key", "previous"}
    assert rotation[0]["data"]["previous"] == rotation[0]["kid"]


@pytest.mark.parametrize("depth", [995, 1100])
def test_data_nested_deeper_than_the_parser_goes_fails_parse_not_the_verifier(folder, depth):
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    replace_last_body(folder, last_body_with_data(folder, nested))
    err = caught(folder)
    assert (err.seq, err.check) == (SIZE, "parse")


def test_a_manifest_nested_too_deep_fails_manifest_format(folder):
    (folder / "manifest.json").write_text("[" * 5000 + "]" * 5000)
    assert caught(folder).check == "manifest-format"


def test_a_float_beside_a_time_without_its_dot_still_fails_parse_first(folder):
    """The fast path counts dots (the time's, the type's): a time without its dot must not hide
    a float's."""
    body = read_entries(folder)[-1]["body"]
    body["time"] = body["time"].replace(".", "")
    raw = canonical_json({**body, "data": {}}).replace(b'"data":{}', b'"data":{"i":5.0}')
    replace_last_body(folder, raw)
    err = caught(folder)
    assert (err.seq, err.check) == (SIZE, "parse")
