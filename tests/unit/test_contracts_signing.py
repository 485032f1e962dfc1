"""Contract signatures: each party's EdDSA JWS over the canonical document, the countersignature."""

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import OKPAlgorithm

from contracts import (
    ContractError,
    ContractSignatureError,
    Offer,
    canonical_bytes,
    contract_document,
    contract_hash,
    countersign,
    countersign_by_message,
    sign_contract,
    verify_contract_signature,
    verify_countersignature,
    verify_countersignature_by_message,
)

START = datetime(2025, 3, 1, tzinfo=UTC)
OFFER = Offer(
    purposes=["research", "credit-scoring"],
    term="P30D",
    quota_rows=100,
    fields=["name", "id_no"],
    lawful_basis_fields=["id_no"],
    lawful_basis="consent",
)
PROVIDER = Ed25519PrivateKey.generate()
CONSUMER = Ed25519PrivateKey.generate()
GATEWAY = Ed25519PrivateKey.generate()


def jwk(key: Ed25519PrivateKey, kid: str | None) -> dict:
    public = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid} if kid else public


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, payload: bytes, sign=lambda data: b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@pytest.fixture
def doc() -> dict:
    return contract_document(
        contract_id="ctr_1",
        offer_id="off_1",
        offer=OFFER,
        product_id="prd_1",
        provider="prov",
        consumer="cons",
        purpose="research",
        not_before=START,
        not_after=START + timedelta(days=30),
        gateway="gw",
    )


@pytest.fixture
def signed(doc) -> str:
    return sign_contract(doc, PROVIDER, kid="prov#k1")


def header_of(jws: str) -> dict:
    part = jws.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_signature_is_a_compact_jws_over_the_canonical_bytes(doc, signed):
    header, payload, signature = signed.split(".")
    assert header_of(signed) == {"alg": "EdDSA", "kid": "prov#k1", "typ": "dsgw-contract+jws"}
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == canonical_bytes(doc)
    assert len(base64.urlsafe_b64decode(signature + "==")) == 64


def test_valid_signature_verifies_and_returns_the_header(doc, signed):
    header = verify_contract_signature(signed, doc, jwk(PROVIDER, "prov#k1"))
    assert header == {"alg": "EdDSA", "kid": "prov#k1", "typ": "dsgw-contract+jws"}


def test_valid_signature_verifies_with_a_jwk_that_has_no_kid(doc, signed):
    assert verify_contract_signature(signed, doc, jwk(PROVIDER, None))["kid"] == "prov#k1"


def test_signature_verifies_against_the_document_after_a_json_round_trip(doc, signed):
    stored = json.loads(json.dumps(doc, indent=2))
    assert verify_contract_signature(signed, stored, jwk(PROVIDER, "prov#k1"))


TAMPERING = [
    ("type", "dsgw:Other"),
    ("version", 2),
    ("contract_id", "ctr_2"),
    ("offer_id", "off_2"),
    ("product_id", "prd_2"),
    ("provider", "someone-else"),
    ("consumer", "someone-else"),
    ("gateway", "gw2"),
    ("purpose", "credit-scoring"),
    ("not_before", "2025-02-01T00:00:00.000000Z"),
    ("not_after", "2026-03-31T00:00:00.000000Z"),
    ("quotas", {"rows": 1000000, "calls": None}),
    ("fields", None),
    ("region", "any"),
    ("onward_transfer", True),
    ("price_fen", 1),
    ("lawful_basis", None),
]


@pytest.mark.parametrize(("member", "value"), TAMPERING, ids=[m for m, _ in TAMPERING])
def test_changing_any_contract_member_after_signing_is_refused(doc, signed, member, value):
    assert doc[member] != value
    tampered = {**doc, member: value}
    with pytest.raises(ContractSignatureError, match=f"members that differ: {member}$"):
        verify_contract_signature(signed, tampered, jwk(PROVIDER, "prov#k1"))


@pytest.mark.parametrize(
    ("outer", "inner", "value"),
    [
        ("offer", "term", "P365D"),
        ("offer", "purposes", ["research", "marketing"]),
        ("offer", "quota_rows", 10**6),
        ("quotas", "rows", 10**6),
        ("lawful_basis", "fields", ["id_no", "name"]),
    ],
)
def test_changing_a_nested_term_after_signing_is_refused(doc, signed, outer, inner, value):
    tampered = copy.deepcopy(doc)
    assert tampered[outer][inner] != value
    tampered[outer][inner] = value
    with pytest.raises(ContractSignatureError, match=f"members that differ: {outer}$"):
        verify_contract_signature(signed, tampered, jwk(PROVIDER, "prov#k1"))


def test_adding_a_member_after_signing_is_refused(doc, signed):
    with pytest.raises(ContractSignatureError, match="members that differ: extra"):
        verify_contract_signature(signed, {**doc, "extra": 1}, jwk(PROVIDER, "prov#k1"))


def test_a_valid_signature_over_another_contract_is_refused(doc):
    other = {**doc, "contract_id": "ctr_other"}
    jws = sign_contract(other, PROVIDER, kid="prov#k1")
    with pytest.raises(ContractSignatureError, match="contract_id"):
        verify_contract_signature(jws, doc, jwk(PROVIDER, "prov#k1"))


def test_alg_none_is_refused(doc):
    jws = forged(
        {"alg": "none", "kid": "prov#k1", "typ": "dsgw-contract+jws"}, canonical_bytes(doc)
    )
    assert jws.endswith(".")
    with pytest.raises(ContractSignatureError, match="expected alg 'EdDSA'.*found 'none'"):
        verify_contract_signature(jws, doc, jwk(PROVIDER, "prov#k1"))


def test_hs256_keyed_with_the_public_key_is_refused(doc):
    secret = PROVIDER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jws = forged(
        {"alg": "HS256", "kid": "prov#k1", "typ": "dsgw-contract+jws"},
        canonical_bytes(doc),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )
    with pytest.raises(ContractSignatureError, match="expected alg 'EdDSA'.*found 'HS256'"):
        verify_contract_signature(jws, doc, jwk(PROVIDER, "prov#k1"))


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "Ed448", "ed25519", "eddsa", None])
def test_any_other_alg_is_refused(doc, alg):
    header = {"kid": "prov#k1", "typ": "dsgw-contract+jws"} | ({"alg": alg} if alg else {})
    jws = forged(header, canonical_bytes(doc), lambda data: bytes(64))
    with pytest.raises(ContractSignatureError, match=f"expected alg 'EdDSA'.*found {alg!r}"):
        verify_contract_signature(jws, doc, jwk(PROVIDER, "prov#k1"))


def test_rfc9864_alg_ed25519_is_accepted_beside_eddsa(doc):
    # RFC 9864's fully specified name for the same algorithm on an Ed25519 key.
    header = {"alg": "Ed25519", "kid": "prov#k1", "typ": "dsgw-contract+jws"}
    jws = forged(header, canonical_bytes(doc), PROVIDER.sign)
    assert verify_contract_signature(jws, doc, jwk(PROVIDER, "prov#k1"))["alg"] == "Ed25519"
    assert verify_contract_signature(jws, doc, {**jwk(PROVIDER, "prov#k1"), "alg": "Ed25519"})
    with pytest.raises(ContractSignatureError, match="OKP Ed25519"):
        verify_contract_signature(jws, doc, {**jwk(PROVIDER, "prov#k1"), "crv": "Ed448"})


def test_a_forgery_with_the_identity_point_as_key_is_refused(doc):
    # x = identity, R = identity, S = 0 "verifies" any message under plain Ed25519 arithmetic.
    identity = (1).to_bytes(32, "little")
    weak = {"kty": "OKP", "crv": "Ed25519", "x": b64(identity), "kid": "prov#k1"}
    header = {"alg": "EdDSA", "kid": "prov#k1", "typ": "dsgw-contract+jws"}
    jws = forged(header, canonical_bytes(doc), lambda data: identity + bytes(32))
    with pytest.raises(ContractSignatureError, match="small order"):
        verify_contract_signature(jws, doc, weak)


def test_signature_by_a_different_ed25519_key_is_refused(doc):
    jws = sign_contract(doc, Ed25519PrivateKey.generate(), kid="prov#k1")
    with pytest.raises(ContractSignatureError, match="does not verify with the given public key"):
        verify_contract_signature(jws, doc, jwk(PROVIDER, "prov#k1"))


def test_wrong_kid_is_refused_naming_expected_and_found(doc, signed):
    with pytest.raises(ContractSignatureError, match="expected kid 'prov#k2'.*found 'prov#k1'"):
        verify_contract_signature(signed, doc, jwk(PROVIDER, "prov#k2"))


def test_a_flipped_signature_bit_is_refused(doc, signed):
    head, payload, signature = signed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 1
    with pytest.raises(ContractSignatureError, match="does not verify"):
        verify_contract_signature(f"{head}.{payload}.{b64(bytes(raw))}", doc, jwk(PROVIDER, None))


def test_a_countersignature_is_not_accepted_as_a_party_signature(doc, signed):
    consumer = sign_contract(doc, CONSUMER, kid="cons#k1")
    gateway = countersign(doc, signed, consumer, GATEWAY, kid="gw#k1")
    with pytest.raises(ContractSignatureError, match="expected typ 'dsgw-contract\\+jws'"):
        verify_contract_signature(gateway, doc, jwk(GATEWAY, "gw#k1"))


def test_critical_header_extensions_are_refused(doc):
    header = {"alg": "EdDSA", "kid": "k", "typ": "dsgw-contract+jws", "crit": ["exp"], "exp": 1}
    jws = forged(header, canonical_bytes(doc), PROVIDER.sign)
    with pytest.raises(ContractSignatureError, match="expected no critical header extensions"):
        verify_contract_signature(jws, doc, jwk(PROVIDER, None))


@pytest.mark.parametrize(
    ("jws", "found"),
    [
        ("", "compact JWS.*found ''"),
        ("abc", "compact JWS.*found 'abc'"),
        ("a.b", "compact JWS.*found 'a.b'"),
        ("a.b.c.d", "compact JWS.*found 'a.b.c.d'"),
        (42, "compact JWS.*found int"),
        (None, "compact JWS.*found NoneType"),
        ("e30.e30.AAAA====", "signature as unpadded base64url"),
        ("e30.e30.A+/A", "signature as unpadded base64url"),
        ("e30.e30.AB", "signature in canonical base64url"),
        ("bm90IGpzb24.e30.AA", "header to be a JSON object, found b'not json'"),
        ("W10.e30.AA", "header to be a JSON object"),
    ],
)
def test_anything_but_a_compact_jws_is_refused(doc, jws, found):
    with pytest.raises(ContractSignatureError, match=f"expected .*{found}"):
        verify_contract_signature(jws, doc, jwk(PROVIDER, None))


@pytest.mark.parametrize(
    "public_jwk",
    [
        {"kty": "OKP", "crv": "Ed448", "x": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "OKP", "crv": "Ed25519", "x": "not-a-key"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AA", "alg": "HS256"},
    ],
)
def test_keys_that_are_not_ed25519_jwks_are_refused(doc, signed, public_jwk):
    with pytest.raises(ContractSignatureError, match="expected"):
        verify_contract_signature(signed, doc, public_jwk)


def test_signing_refuses_a_key_that_is_not_ed25519(doc):
    with pytest.raises(ContractSignatureError, match="expected an Ed25519 private key"):
        sign_contract(doc, Ed448PrivateKey.generate(), kid="k")


def test_signature_errors_are_contract_errors():
    assert issubclass(ContractSignatureError, ContractError)


def test_countersignature_covers_the_hash_and_both_signatures(doc, signed):
    consumer = sign_contract(doc, CONSUMER, kid="cons#k1")
    gateway = countersign(doc, signed, consumer, GATEWAY, kid="gw#k1")
    assert header_of(gateway) == {
        "alg": "EdDSA",
        "kid": "gw#k1",
        "typ": "dsgw-countersignature+jws",
    }
    payload = gateway.split(".")[1]
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == canonical_bytes(
        {"contract_hash": contract_hash(doc), "provider_sig": signed, "consumer_sig": consumer}
    )
    header = verify_countersignature(gateway, doc, signed, consumer, jwk(GATEWAY, "gw#k1"))
    assert header["kid"] == "gw#k1"


def test_countersignature_is_refused_when_a_party_signature_is_swapped(doc, signed):
    consumer = sign_contract(doc, CONSUMER, kid="cons#k1")
    gateway = countersign(doc, signed, consumer, GATEWAY, kid="gw#k1")
    other = sign_contract(doc, Ed25519PrivateKey.generate(), kid="cons#k1")
    with pytest.raises(ContractSignatureError, match="consumer_sig"):
        verify_countersignature(gateway, doc, signed, other, jwk(GATEWAY, "gw#k1"))


def test_countersignature_is_refused_for_a_changed_contract(doc, signed):
    consumer = sign_contract(doc, CONSUMER, kid="cons#k1")
    gateway = countersign(doc, signed, consumer, GATEWAY, kid="gw#k1")
    with pytest.raises(ContractSignatureError, match="provider signature over this contract"):
        verify_countersignature(
            gateway, {**doc, "price_fen": 9}, signed, consumer, jwk(GATEWAY, None)
        )


def test_gateway_refuses_to_countersign_a_party_signature_over_another_contract(doc, signed):
    elsewhere = sign_contract({**doc, "purpose": "credit-scoring"}, CONSUMER, kid="cons#k1")
    with pytest.raises(ContractSignatureError, match="expected the consumer signature over this"):
        countersign(doc, signed, elsewhere, GATEWAY, kid="gw#k1")


def test_the_test_vector_in_the_spec_is_what_the_code_produces():
    spec = (Path(__file__).resolve().parents[2] / "specs" / "contracts.md").read_text()
    offer = Offer(
        purposes=["research"],
        term="P30D",
        quota_calls=1000,
        fields=["district", "avg_income"],
        price_fen=50000,
    )
    vector = contract_document(
        contract_id="ctr_01",
        offer_id="off_01",
        offer=offer,
        product_id="prd_01",
        provider="91110000MA01ABCD1X",
        consumer="91310000MA1FL2EF3Y",
        purpose="research",
        not_before=START,
        not_after=START + timedelta(days=30),
        gateway="dsgw-gateway",
    )
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    header, payload, signature = sign_contract(vector, key, kid="provider-key-1").split(".")
    assert f"\n{canonical_bytes(vector).decode()}\n" in spec
    assert f"`{contract_hash(vector)}`" in spec
    assert f'"x": "{jwk(key, None)["x"]}"' in spec
    assert f"`{header}`" in spec
    assert f"`{signature}`" in spec
    assert payload == b64(canonical_bytes(vector))


def test_a_countersignature_by_message_binds_the_verification_digest_instead_of_a_jws(doc, signed):
    digest = hashlib.sha256(b'{"@type": "ContractAgreementVerificationMessage"}').hexdigest()
    gateway = countersign_by_message(doc, signed, digest, GATEWAY, kid="gw#k1")
    payload = gateway.split(".")[1]
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == canonical_bytes(
        {
            "contract_hash": contract_hash(doc),
            "provider_sig": signed,
            "consumer_verification": f"sha256:{digest}",
        }
    )
    verify_countersignature_by_message(gateway, doc, signed, digest, jwk(GATEWAY, "gw#k1"))
    with pytest.raises(ContractSignatureError):
        verify_countersignature_by_message(gateway, doc, signed, "0" * 64, jwk(GATEWAY, "gw#k1"))


def test_a_countersignature_by_message_needs_the_providers_jws_over_the_document(doc):
    other = copy.deepcopy(doc)
    other["purpose"] = "credit-scoring"
    elsewhere = sign_contract(other, PROVIDER, kid="prov#k1")
    with pytest.raises(ContractSignatureError, match="provider signature"):
        countersign_by_message(doc, elsewhere, "a" * 64, GATEWAY, kid="gw#k1")
    with pytest.raises(ContractSignatureError, match="SHA-256"):
        countersign_by_message(doc, sign_contract(doc, PROVIDER, kid="k"), "x", GATEWAY, kid="k")
