"""Contract signatures: compact JWS (RFC 7515), EdDSA with Ed25519 keys (RFC 8037, RFC 9864).

Each party signs the contract document: the JWS payload is the document's RFC 8785 canonical bytes,
attached and base64url-encoded, under the protected header
{"alg": "EdDSA", "kid": <signer's key id>, "typ": "dsgw-contract+jws"}. The gateway countersigns
the canonical bytes of {"contract_hash", "provider_sig", "consumer_sig"} with typ
"dsgw-countersignature+jws". Signing emits alg "EdDSA"; verification accepts "EdDSA" and RFC 9864's
fully specified "Ed25519" (the same algorithm on an Ed25519 key) and nothing else, so "none", HMAC
and any other algorithm a forger might choose are refused before a key is touched. The public key
must pass ledger.ed25519 (canonical, not of small order), or no signature by it verifies.
"""

import base64
import hashlib
import json
import re
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.document import canonical_bytes, contract_hash
from contracts.errors import ContractSignatureError
from ledger.errors import LedgerKeyError
from ledger.keys import public_key_from_jwk

ALGORITHM = "EdDSA"  # what sign_contract and countersign emit
ACCEPTED_ALGORITHMS = ("EdDSA", "Ed25519")  # RFC 8037's name and RFC 9864's
CONTRACT_TYP = "dsgw-contract+jws"
COUNTERSIGNATURE_TYP = "dsgw-countersignature+jws"

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64decode(part: str, what: str) -> bytes:
    """Return the bytes of one unpadded base64url segment, refusing any other spelling."""
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise ContractSignatureError(
            f"expected the JWS {what} as unpadded base64url, found {part!r}"
        )
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != part:
        raise ContractSignatureError(
            f"expected the JWS {what} in canonical base64url, found {part!r}"
        )
    return raw


def _split(jws: Any) -> tuple[str, str, str, dict[str, Any], bytes, bytes]:
    """Return the three segments of a compact JWS and their decoded header, payload, signature."""
    if not isinstance(jws, str) or jws.count(".") != 2:
        shown = repr(jws) if isinstance(jws, str) and len(jws) <= 80 else type(jws).__name__
        raise ContractSignatureError(
            f"expected a compact JWS (three base64url segments joined by '.'), found {shown}"
        )
    header_b64, payload_b64, signature_b64 = jws.split(".")
    header_raw = _b64decode(header_b64, "header")
    try:
        header = json.loads(header_raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise ContractSignatureError(
            f"expected the JWS header to be a JSON object, found {header_raw[:80]!r}"
        )
    payload = _b64decode(payload_b64, "payload")
    signature = _b64decode(signature_b64, "signature")
    return header_b64, payload_b64, signature_b64, header, payload, signature


def _check_header(header: dict[str, Any], typ: str, public_jwk: dict[str, Any]) -> None:
    if header.get("alg") not in ACCEPTED_ALGORITHMS:
        raise ContractSignatureError(
            f"expected alg 'EdDSA' or 'Ed25519' in the JWS header, found {header.get('alg')!r}"
        )
    if header.get("typ") != typ:
        raise ContractSignatureError(
            f"expected typ {typ!r} in the JWS header, found {header.get('typ')!r}"
        )
    if "crit" in header or header.get("b64", True) is not True:
        raise ContractSignatureError(
            "expected no critical header extensions (crit, b64), found "
            f"crit={header.get('crit')!r} b64={header.get('b64', True)!r}"
        )
    if "kid" in public_jwk and header.get("kid") != public_jwk["kid"]:
        raise ContractSignatureError(
            f"expected kid {public_jwk['kid']!r} in the JWS header, found {header.get('kid')!r}"
        )


def _public_key(public_jwk: dict[str, Any]) -> Ed25519PublicKey:
    """Return the Ed25519 public key of an RFC 8037 OKP JWK."""
    if not isinstance(public_jwk, dict):
        raise ContractSignatureError(f"expected a JWK object, found {type(public_jwk).__name__}")
    found = (public_jwk.get("kty"), public_jwk.get("crv"))
    if found != ("OKP", "Ed25519"):
        raise ContractSignatureError(f"expected an OKP Ed25519 JWK, found kty/crv {found!r}")
    if public_jwk.get("alg", ALGORITHM) not in ACCEPTED_ALGORITHMS:
        raise ContractSignatureError(
            f"expected a JWK for alg 'EdDSA' or 'Ed25519', found alg {public_jwk['alg']!r}"
        )
    try:
        return public_key_from_jwk(public_jwk)  # refuses small-order and non-canonical points
    except LedgerKeyError as exc:
        raise ContractSignatureError(f"expected a valid Ed25519 JWK: {exc}") from exc


def _differences(found: bytes, expected: dict[str, Any]) -> str:
    """Return which top-level members of a signed payload differ from the expected document."""
    try:
        signed = json.loads(found)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "the payload is not JSON"
    if not isinstance(signed, dict):
        return "the payload is not a JSON object"
    keys = sorted(k for k in signed.keys() | expected.keys() if signed.get(k) != expected.get(k))
    return "members that differ: " + (", ".join(keys) if keys else "none (not in JCS form)")


def _verify(jws: str, expected: dict[str, Any], public_jwk: dict[str, Any], typ: str) -> dict:
    key = _public_key(public_jwk)
    header_b64, payload_b64, _, header, payload, signature = _split(jws)
    _check_header(header, typ, public_jwk)
    if len(signature) != 64:
        raise ContractSignatureError(
            f"expected a 64-byte Ed25519 signature, found {len(signature)} bytes"
        )
    try:
        key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        raise ContractSignatureError(
            f"expected a signature by key {header.get('kid')!r} over this JWS, found one that "
            "does not verify with the given public key"
        ) from None
    wanted = canonical_bytes(expected)
    if payload != wanted:
        raise ContractSignatureError(
            "expected the signed payload to be the canonical document (sha256 "
            f"{hashlib.sha256(wanted).hexdigest()}), found sha256 "
            f"{hashlib.sha256(payload).hexdigest()}; {_differences(payload, expected)}"
        )
    return header


def _sign(content: dict[str, Any], private_key: Ed25519PrivateKey, kid: str, typ: str) -> str:
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ContractSignatureError(
            f"expected an Ed25519 private key, found {type(private_key).__name__}"
        )
    if not isinstance(kid, str) or not kid:
        raise ContractSignatureError(f"expected a non-empty kid, found {kid!r}")
    return jwt.PyJWS().encode(
        canonical_bytes(content),
        private_key,
        algorithm=ALGORITHM,
        headers={"alg": ALGORITHM, "kid": kid, "typ": typ},
    )


def _countersigned(doc: dict[str, Any], provider_jws: str, consumer_jws: str) -> dict[str, Any]:
    """Return the content the gateway countersigns, after checking both JWSs are over `doc`."""
    wanted = canonical_bytes(doc)
    for party, jws in (("provider", provider_jws), ("consumer", consumer_jws)):
        payload = _split(jws)[4]
        if payload != wanted:
            raise ContractSignatureError(
                f"expected the {party} signature over this contract (sha256 "
                f"{hashlib.sha256(wanted).hexdigest()}), found one over sha256 "
                f"{hashlib.sha256(payload).hexdigest()}"
            )
    return {
        "contract_hash": contract_hash(doc),
        "provider_sig": provider_jws,
        "consumer_sig": consumer_jws,
    }


def sign_contract(doc: dict[str, Any], private_key: Ed25519PrivateKey, *, kid: str) -> str:
    """Return a party's compact JWS (EdDSA) over the document's canonical bytes."""
    return _sign(doc, private_key, kid, CONTRACT_TYP)


def verify_contract_signature(jws: str, doc: dict[str, Any], public_jwk: dict[str, Any]) -> dict:
    """Return the protected header of a party's valid JWS over `doc`; raise otherwise."""
    return _verify(jws, doc, public_jwk, CONTRACT_TYP)


def countersign(
    doc: dict[str, Any],
    provider_jws: str,
    consumer_jws: str,
    gateway_key: Ed25519PrivateKey,
    *,
    kid: str,
) -> str:
    """Return the gateway's JWS over the contract hash and both parties' signatures."""
    return _sign(
        _countersigned(doc, provider_jws, consumer_jws), gateway_key, kid, COUNTERSIGNATURE_TYP
    )


def _countersigned_by_message(
    doc: dict[str, Any], provider_jws: str, verification_hash: str
) -> dict[str, Any]:
    """Return what the gateway countersigns for a contract a DSP connector's consumer verified
    by message: the provider's JWS (checked over `doc`) and the message's SHA-256 in place of
    the consumer's JWS."""
    wanted = canonical_bytes(doc)
    if _split(provider_jws)[4] != wanted:
        raise ContractSignatureError("expected the provider signature over this contract")
    if not isinstance(verification_hash, str) or len(verification_hash) != 64:
        raise ContractSignatureError(
            f"expected the verification message's SHA-256 (64 hex digits), found "
            f"{verification_hash!r}"
        )
    return {
        "contract_hash": contract_hash(doc),
        "provider_sig": provider_jws,
        "consumer_verification": f"sha256:{verification_hash}",
    }


def countersign_by_message(
    doc: dict[str, Any],
    provider_jws: str,
    verification_hash: str,
    gateway_key: Ed25519PrivateKey,
    *,
    kid: str,
) -> str:
    """Return the gateway's JWS over the contract hash, the provider's signature and the
    SHA-256 of the consumer's verification message (a DSP connector signs no contract)."""
    return _sign(
        _countersigned_by_message(doc, provider_jws, verification_hash),
        gateway_key,
        kid,
        COUNTERSIGNATURE_TYP,
    )


def verify_countersignature_by_message(
    jws: str,
    doc: dict[str, Any],
    provider_jws: str,
    verification_hash: str,
    public_jwk: dict[str, Any],
) -> dict:
    """Return the protected header of the gateway's valid countersignature of a contract
    verified by message; raise otherwise."""
    return _verify(
        jws,
        _countersigned_by_message(doc, provider_jws, verification_hash),
        public_jwk,
        COUNTERSIGNATURE_TYP,
    )


def verify_countersignature(
    jws: str,
    doc: dict[str, Any],
    provider_jws: str,
    consumer_jws: str,
    public_jwk: dict[str, Any],
) -> dict:
    """Return the protected header of the gateway's valid countersignature; raise otherwise."""
    return _verify(
        jws, _countersigned(doc, provider_jws, consumer_jws), public_jwk, COUNTERSIGNATURE_TYP
    )
