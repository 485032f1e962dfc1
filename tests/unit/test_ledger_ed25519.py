"""ledger.ed25519: the one check of an Ed25519 public key, and the verifier that relies on it."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import create_engine

from ledger import keys as keys_module
from ledger.canonical import b64url, b64url_decode, canonical_json
from ledger.ed25519 import check_public_key, public_key_bytes
from ledger.errors import LedgerKeyError
from ledger.export import export
from ledger.keys import Signer, jwk_thumbprint, public_key_from_jwk
from ledger.store import append, create_schema
from tests.unit.test_ledger_verify import (
    ROTATE_AT,
    SIGNER_A,
    caught,
    folder,  # noqa: F401 (fixture)
    pristine,  # noqa: F401 (fixture)
    read_entries,
    rehash,
    write_entries,
)

IDENTITY = (1).to_bytes(32, "little")
# The eight points of small order (the torsion subgroup of edwards25519), canonically encoded.
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
]
# Other spellings: the sign bit set on x = 0, and y + p for y = 1 and y = 0.
NON_CANONICAL = [
    ("0100000000000000000000000000000000000000000000000000000000000080", "sign bit"),
    ("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "sign bit"),
    ("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "not below 2"),
    ("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "not below 2"),
    ("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "not below 2"),
]
# A base point B and the sum of B and the order-2 point: prime order, and with a torsion part.
BASE = "5866666666666666666666666666666666666666666666666666666666666666"


@pytest.mark.parametrize("point", SMALL_ORDER)
def test_every_small_order_point_is_refused(point):
    with pytest.raises(LedgerKeyError, match="small order"):
        check_public_key(bytes.fromhex(point))


@pytest.mark.parametrize("point, why", NON_CANONICAL)
def test_non_canonical_encodings_are_refused(point, why):
    with pytest.raises(LedgerKeyError, match=why):
        check_public_key(bytes.fromhex(point))


def test_a_point_off_the_curve_is_refused():
    # y = 2 gives x^2 = 3 / (4d + 1), not a square modulo p.
    with pytest.raises(LedgerKeyError, match="not a point of the curve"):
        check_public_key((2).to_bytes(32, "little"))


def test_a_point_with_a_torsion_component_is_refused():
    from ledger import ed25519

    base = ed25519._decode(bytes.fromhex(BASE))
    order2 = ed25519._decode(bytes.fromhex(SMALL_ORDER[1]))
    x, y, z, _ = ed25519._add(base, order2)
    zi = pow(z, ed25519._P - 2, ed25519._P)
    x, y = x * zi % ed25519._P, y * zi % ed25519._P
    mixed = (y | ((x & 1) << 255)).to_bytes(32, "little")
    with pytest.raises(LedgerKeyError, match="prime-order subgroup"):
        check_public_key(mixed)
    check_public_key(bytes.fromhex(BASE))  # B itself is fine


def test_generated_keys_and_the_rfc8037_key_are_accepted():
    check_public_key(b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
    for _ in range(20):
        public_key_bytes(Signer.generate().public_jwk()["x"])


@pytest.mark.parametrize(
    "x, why",
    [
        (b64url(bytes(31)), "32 bytes"),
        (b64url(bytes(33)), "32 bytes"),
        ("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "base64url"),
        ("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp", "base64url"),  # unused bits set
        ("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo", "base64url"),
        (32, "string"),
    ],
)
def test_x_must_be_canonical_base64url_of_32_bytes(x, why):
    with pytest.raises(LedgerKeyError, match=why):
        public_key_bytes(x)


def test_public_key_from_jwk_refuses_the_identity_point():
    with pytest.raises(LedgerKeyError, match="small order"):
        public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": b64url(IDENTITY)})


def test_a_rotation_to_a_small_order_key_is_refused_at_that_entry(folder):  # noqa: F811
    entries = read_entries(folder)
    rotation = entries[ROTATE_AT - 2]
    rotation["body"]["data"]["key"] = {"kty": "OKP", "crv": "Ed25519", "x": b64url(IDENTITY)}
    rehash(rotation)
    rotation["sig"] = b64url(SIGNER_A.sign(canonical_json(rotation["body"])))
    write_entries(folder, entries)
    err = caught(folder)
    assert (err.seq, err.check) == (ROTATE_AT - 1, "key-rotation")
    assert "small order" in err.found


def test_keys_json_with_a_small_order_key_is_refused(folder):  # noqa: F811
    keys = json.loads((folder / "keys.json").read_text())
    keys["keys"].append(
        {"kty": "OKP", "crv": "Ed25519", "x": b64url(bytes.fromhex(SMALL_ORDER[4]))}
    )
    (folder / "keys.json").write_text(json.dumps(keys))
    err = caught(folder)
    assert err.check == "keys" and "small order" in err.found


class _IdentityKey(Signer):
    """A forger's "key": the identity point, whose "signature" R = identity, S = 0 fits all."""

    def __init__(self) -> None:
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(IDENTITY)}
        self._public_jwk = {**jwk, "kid": jwk_thumbprint(jwk), "use": "sig", "alg": "EdDSA"}
        self.kid = self._public_jwk["kid"]

    def sign(self, data: bytes) -> bytes:
        return IDENTITY + bytes(32)

    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(IDENTITY)


def test_a_ledger_forged_with_the_identity_key_is_refused(tmp_path, monkeypatch):
    # Write the forgery with the key check switched off, as a forger's own tools would.
    lenient = lambda x: b64url_decode(x)  # noqa: E731
    monkeypatch.setattr(keys_module, "public_key_bytes", lenient)
    forger, t0 = _IdentityKey(), datetime(2026, 1, 1, tzinfo=UTC)
    engine = create_engine(f"sqlite:///{tmp_path / 'forged.db'}")
    create_schema(engine)
    out = tmp_path / "forged"
    with engine.begin() as conn:
        append(conn, type="ledger.genesis", data={"origin": "x", "key": forger.public_jwk()},
               time=t0, signer=forger)  # fmt: skip
        append(conn, type="exchange.decided", data={"allow": True}, time=t0 + timedelta(1),
               signer=forger)  # fmt: skip
        export(conn, out, public_jwks=[forger.public_jwk()], signer=forger, origin="x",
               now=t0 + timedelta(2))  # fmt: skip
    engine.dispose()
    monkeypatch.undo()
    err = caught(out)
    assert err.check == "keys" and "small order" in err.found
    err = caught(out, trusted_kids=[forger.kid])
    assert err.check == "keys"
