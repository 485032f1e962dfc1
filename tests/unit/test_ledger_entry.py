"""ledger.entry: how one entry is built, hashed and signed."""

import hashlib
from datetime import UTC, datetime

import pytest

from ledger.canonical import b64url_decode, canonical_json
from ledger.entry import GENESIS_PREV, Entry, build_entry, entry_hash
from ledger.keys import Signer, public_key_from_jwk

T = datetime(2026, 11, 21, 20, 10, 0, 123456, tzinfo=UTC)
SIGNER = Signer.generate()


def _entry(**overrides) -> Entry:
    args = dict(seq=1, time=T, type="participant.registered", data={"p": 1}, prev=GENESIS_PREV)
    return build_entry(**{**args, **overrides}, signer=SIGNER)


def test_body_has_exactly_the_specified_members():
    entry = _entry()
    assert entry.body == {
        "v": 1,
        "seq": 1,
        "time": "2026-11-21T20:10:00.123456Z",
        "type": "participant.registered",
        "data": {"p": 1},
        "prev": "0" * 64,
        "kid": SIGNER.kid,
    }
    assert (entry.seq, entry.time, entry.type, entry.data, entry.prev, entry.kid) == (
        1,
        "2026-11-21T20:10:00.123456Z",
        "participant.registered",
        {"p": 1},
        GENESIS_PREV,
        SIGNER.kid,
    )


def test_hash_is_sha256_of_the_canonical_body_and_sig_signs_the_same_bytes():
    entry = _entry(data={"z": [1, 2.5, "数据"], "a": None})
    canonical = canonical_json(entry.body)
    assert entry.canonical == canonical
    assert entry.hash == hashlib.sha256(canonical).hexdigest() == entry_hash(entry.body)
    public_key_from_jwk(SIGNER.public_jwk()).verify(b64url_decode(entry.sig), canonical)


def test_to_json_is_the_exported_shape():
    entry = _entry()
    assert entry.to_json() == {"body": entry.body, "hash": entry.hash, "sig": entry.sig}


def test_entry_does_not_follow_later_changes_to_the_callers_data():
    data = {"rows": [1, 2]}
    entry = _entry(data=data)
    data["rows"].append(3)
    assert entry.data == {"rows": [1, 2]}
    assert entry_hash(entry.body) == entry.hash


def test_body_is_normalised_as_a_verifier_will_read_it():
    entry = _entry(data={"t": (1, 2), "f": 2.0})
    assert entry.data == {"t": [1, 2], "f": 2}


@pytest.mark.parametrize(
    "overrides",
    [
        {"seq": 0},
        {"seq": True},
        {"time": datetime(2026, 11, 21, 20, 10)},  # naive
        {"type": ""},
        {"type": "has space"},
        {"type": "x" * 129},
        {"data": ["not", "an", "object"]},
        {"data": {"big": 2**53}},
        {"data": {"nan": float("nan")}},
        {"prev": "0" * 63},
        {"prev": "A" * 64},
    ],
)
def test_build_entry_refuses_what_cannot_be_a_valid_entry(overrides):
    with pytest.raises(ValueError):
        _entry(**overrides)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"b": 1, "a": "数据", "c": [1, 2.5, None, True], "\u20ac": {"z": -0.0, "y": 1e21}},
        {"text": "quote \" backslash \\ newline \n tab \t nul \u0000 emoji 😀"},
        {"n": 2**53 - 1, "f": 0.1, "nested": {"k": [{"x": "\u2028"}]}},
    ],
)
def test_the_assembled_body_bytes_are_exactly_rfc_8785(data):
    import rfc8785

    signer = Signer.generate()
    entry = build_entry(
        seq=12, time=datetime(2026, 11, 21, tzinfo=UTC), type="a.b:c-d_e", data=data,
        prev="ab" * 32, signer=signer,
    )  # fmt: skip
    assert entry.canonical == rfc8785.dumps(entry.body)
    assert entry.canonical == rfc8785.dumps(
        {"v": 1, "seq": 12, "time": entry.time, "type": "a.b:c-d_e", "data": data,
         "prev": "ab" * 32, "kid": signer.kid}
    )  # fmt: skip
