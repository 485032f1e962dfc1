"""Ed25519 keys as JWKs (RFC 7517, RFC 8037) and their RFC 7638 thumbprints, which are the kids."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger.canonical import b64url, b64url_decode, canonical_json
from ledger.ed25519 import public_key_bytes
from ledger.errors import LedgerKeyError

# RFC 7638 §3.2 (and RFC 8037 §2 for OKP): the members a thumbprint covers, per key type.
_THUMBPRINT_MEMBERS = {
    "OKP": ("crv", "kty", "x"),
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "oct": ("k", "kty"),
}
_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def jwk_thumbprint(jwk: dict) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of `jwk`, base64url without padding."""
    if not isinstance(jwk, dict):
        raise LedgerKeyError(f"a JWK must be a JSON object, not {type(jwk).__name__}")
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise LedgerKeyError(f"cannot take the thumbprint of a JWK with kty {kty!r}")
    required = {}
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str):
            raise LedgerKeyError(f"a {kty} JWK needs a string member {name!r} for its thumbprint")
        required[name] = value
    return b64url(hashlib.sha256(canonical_json(required)).digest())


def _check_ed25519(jwk: object) -> None:
    """Raise LedgerKeyError unless `jwk` is a JSON object with kty 'OKP' and crv 'Ed25519'."""
    if not isinstance(jwk, dict):
        raise LedgerKeyError(f"a JWK must be a JSON object, not {type(jwk).__name__}")
    if jwk.get("kty") != "OKP":
        raise LedgerKeyError(f"expected a JWK with kty 'OKP', found kty {jwk.get('kty')!r}")
    if jwk.get("crv") != "Ed25519":
        raise LedgerKeyError(f"expected a JWK with crv 'Ed25519', found crv {jwk.get('crv')!r}")


def _ed25519_x(jwk: dict) -> bytes:
    """Return the 32 public key bytes of an Ed25519 JWK, after checking kty, crv and the point
    (canonical and of prime order: ledger.ed25519)."""
    _check_ed25519(jwk)
    if jwk.get("x") is None:
        raise LedgerKeyError("the Ed25519 JWK has no 'x' member")
    return public_key_bytes(jwk["x"])


def _key_bytes(jwk: dict, member: str) -> bytes:
    value = jwk.get(member)
    if value is None:
        raise LedgerKeyError(f"the Ed25519 JWK has no {member!r} member")
    try:
        raw = b64url_decode(value)
    except ValueError as exc:
        raise LedgerKeyError(f"the JWK member {member!r} is not unpadded base64url") from exc
    if len(raw) != _KEY_BYTES:
        raise LedgerKeyError(
            f"the JWK member {member!r} holds {len(raw)} bytes; Ed25519 keys are {_KEY_BYTES}"
        )
    return raw


def public_key_from_jwk(jwk: dict) -> Ed25519PublicKey:
    """Return the Ed25519 public key of an OKP/Ed25519 JWK; raise LedgerKeyError otherwise
    (also for a weak or non-canonical point: see ledger.ed25519)."""
    return Ed25519PublicKey.from_public_bytes(_ed25519_x(jwk))


def public_jwk_of(public_key: Ed25519PublicKey) -> dict:
    """Return the public JWK of `public_key` with its kid, use 'sig' and alg 'EdDSA'."""
    x = b64url(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x}
    return {**jwk, "kid": jwk_thumbprint(jwk), "use": "sig", "alg": "EdDSA"}


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Return True if `signature` is a valid Ed25519 signature of `data`, else False."""
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class Signer:
    """An Ed25519 private key that signs ledger entries and manifests; `kid` names its key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise LedgerKeyError(f"expected an Ed25519PrivateKey, not {type(private_key).__name__}")
        self._key = private_key
        self._public_jwk = public_jwk_of(private_key.public_key())
        self.kid: str = self._public_jwk["kid"]

    def __repr__(self) -> str:
        return f"Signer(kid={self.kid!r})"

    @classmethod
    def generate(cls) -> Signer:
        """Return a signer with a new random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_jwk(cls, jwk: dict) -> Signer:
        """Return the signer of a private OKP/Ed25519 JWK (with 'd'); 'x', if given, must match."""
        _check_ed25519(jwk)
        if "d" not in jwk:
            raise LedgerKeyError("the JWK has no 'd' member: it is a public key, not a private one")
        signer = cls(Ed25519PrivateKey.from_private_bytes(_key_bytes(jwk, "d")))
        if "x" in jwk and jwk["x"] != signer._public_jwk["x"]:
            raise LedgerKeyError("the JWK's 'x' is not the public key of its 'd'")
        return signer

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of `data`."""
        return self._key.sign(data)

    def public_key(self) -> Ed25519PublicKey:
        """Return the public key."""
        return self._key.public_key()

    def public_jwk(self) -> dict:
        """Return the public JWK: kty, crv, x, kid, use, alg."""
        return dict(self._public_jwk)

    def private_jwk(self) -> dict:
        """Return the private JWK: the public JWK plus 'd'. Keep it secret."""
        d = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {**self._public_jwk, "d": b64url(d)}


def load_or_create_signer(path: Path) -> Signer:
    """Return the signer whose private JWK is stored at `path`, creating it (mode 0600) if absent.

    Refuses (LedgerKeyError) a key file that group or others may read, write or execute, and a
    key file that is not a private Ed25519 JWK. Creation is atomic: concurrent callers all end up
    with the one key that was written first.
    """
    path = Path(path)
    try:
        return _load_signer(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = Signer.generate()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # the umask may have removed owner bits
            json.dump(signer.private_jwk(), f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # never replaces a key another process wrote meanwhile
        except FileExistsError:
            return _load_signer(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return signer


def _load_signer(path: Path) -> Signer:
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if os.name == "posix" and mode & 0o077:
            raise LedgerKeyError(
                f"refusing the key file {path}: its mode is {stat.filemode(mode)} "
                f"({oct(stat.S_IMODE(mode))}), so other users may read or change the private key; "
                f"run 'chmod 600 {path}' if it has not leaked, else replace the key"
            )
        raw = f.read()
    try:
        jwk = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerKeyError(f"the key file {path} is not JSON: {exc}") from exc
    try:
        return Signer.from_jwk(jwk)
    except LedgerKeyError as exc:
        raise LedgerKeyError(f"the key file {path} is not a private Ed25519 JWK: {exc}") from exc
