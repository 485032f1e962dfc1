"""Registration certificates (登记证书): a JWS by the gateway over the canonical registration.

The certificate is a compact JWS (RFC 7515) with header {"alg": "EdDSA", "kid": <gateway key>,
"typ": "dsgw-registration+jws"} and, as payload, the RFC 8785 canonical JSON of the registration
record (see `payload`). Anyone holding the gateway's public keys (GET /.well-known/jwks.json)
checks it offline with `verify`, which needs only `cryptography` and the ledger package's
canonical helpers: no database, no running gateway.
"""

import hashlib
import json
from typing import Any

from ledger import Signer, b64url, b64url_decode, canonical_json
from ledger.keys import public_key_from_jwk, verify_signature

TYP = "dsgw-registration+jws"
PAYLOAD_TYPE = "dsgw.registration-certificate/v1"


class CertificateError(ValueError):
    """The certificate does not verify; the message says which check, expected what, found what."""


def sign(payload: dict[str, Any], signer: Signer) -> str:
    """Return the compact JWS of `payload` (canonical JSON) signed by the gateway's key."""
    header = {"alg": "EdDSA", "kid": signer.kid, "typ": TYP}
    signing_input = f"{b64url(canonical_json(header))}.{b64url(canonical_json(payload))}"
    signature = signer.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def decode(certificate: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the (header, payload) of a certificate without checking its signature."""
    parts = certificate.strip().split(".") if isinstance(certificate, str) else []
    if len(parts) != 3:
        raise CertificateError(
            f"format: expected a compact JWS of 3 dot-separated parts, found {len(parts)}"
        )
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
    except ValueError as exc:
        raise CertificateError(
            f"format: the header or payload is not base64url JSON: {exc}"
        ) from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise CertificateError("format: expected JSON objects as header and payload")
    return header, payload


def verify(certificate: str, keys: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the payload of a certificate signed by one of `keys` (public JWKs), else raise."""
    header, payload = decode(certificate)
    if header.get("alg") != "EdDSA":
        raise CertificateError(f"alg: expected 'EdDSA', found {header.get('alg')!r}")
    if header.get("typ") != TYP:
        raise CertificateError(f"typ: expected {TYP!r}, found {header.get('typ')!r}")
    by_kid = {k.get("kid"): k for k in keys}
    kid = header.get("kid")
    if kid not in by_kid:
        raise CertificateError(
            f"kid: the certificate names key {kid!r}; the given keys are {sorted(map(str, by_kid))}"
        )
    signing_input, _, signature = certificate.strip().rpartition(".")
    try:
        raw_signature = b64url_decode(signature)
        public_key = public_key_from_jwk(by_kid[kid])
    except ValueError as exc:
        raise CertificateError(f"signature: unreadable signature or key: {exc}") from None
    if not verify_signature(public_key, raw_signature, signing_input.encode("ascii")):
        raise CertificateError(f"signature: does not verify with gateway key {kid!r}")
    if canonical_json(payload) != b64url_decode(signing_input.split(".")[1]):
        raise CertificateError("canonical: the payload is not in RFC 8785 canonical form")
    if payload.get("type") != PAYLOAD_TYPE:
        raise CertificateError(f"type: expected {PAYLOAD_TYPE!r}, found {payload.get('type')!r}")
    found = hashlib.sha256(canonical_json(payload.get("record"))).hexdigest()
    if payload.get("record_hash") != found:
        raise CertificateError(
            f"record_hash: expected {payload.get('record_hash')!r}, found {found!r}"
        )
    return payload
