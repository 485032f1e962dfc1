"""The one check of an Ed25519 public key (RFC 8032 §5.1.3), wherever a key enters.

`cryptography` (OpenSSL) verifies signatures with any 32 bytes as the key, including points of
small order: with the identity point as the key, the signature R = identity, S = 0 verifies for
every message, so such a "key" proves nothing. A key is accepted here only when its 32 bytes are
the canonical encoding of a point of the curve that lies in the prime-order subgroup, which is
what every honestly generated Ed25519 key is (A = [s]B):

1. the y coordinate is below p = 2^255 - 19 (no second spelling y + p);
2. the point decodes: x^2 = (y^2 - 1) / (d y^2 + 1) has a square root modulo p;
3. x = 0 with the sign bit set is refused ("negative zero", a second spelling of x = 0);
4. the point does not have small order: [8]A is not the identity (this refuses the eight torsion
   points, the identity among them, in both sign spellings);
5. the point has no torsion component: [L]A is the identity, L the order of the base point.

`check_public_key` raises LedgerKeyError saying which rule failed; `public_key_bytes` also
decodes the JWK member `x` (canonical unpadded base64url, 32 bytes).
"""

from __future__ import annotations

from functools import lru_cache

from ledger.canonical import b64url_decode
from ledger.errors import LedgerKeyError

KEY_BYTES = 32
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_L = 2**252 + 27742317777372353535851937790883648493
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z
_IDENTITY: _Point = (0, 1, 1, 0)


def public_key_bytes(x: object) -> bytes:
    """Return the 32 bytes of a JWK's `x` after every check; raise LedgerKeyError saying why."""
    if not isinstance(x, str):
        raise LedgerKeyError(f"the JWK member 'x' must be a string, found {type(x).__name__}")
    try:
        raw = b64url_decode(x)
    except ValueError:
        raise LedgerKeyError(
            "the JWK member 'x' is not canonical unpadded base64url (RFC 7515 §2: only "
            "A-Z a-z 0-9 - _, no '=' padding, unused trailing bits zero)"
        ) from None
    check_public_key(raw)
    return raw


def check_public_key(raw: bytes) -> None:
    """Raise LedgerKeyError unless `raw` is a canonical Ed25519 key of prime order."""
    if not isinstance(raw, bytes | bytearray) or len(raw) != KEY_BYTES:
        found = f"{len(raw)} bytes" if isinstance(raw, bytes | bytearray) else type(raw).__name__
        raise LedgerKeyError(f"an Ed25519 public key is {KEY_BYTES} bytes, found {found}")
    problem = _problem(bytes(raw))
    if problem is not None:
        raise LedgerKeyError(f"the Ed25519 public key {problem}; it is refused")


@lru_cache(maxsize=4096)
def _problem(raw: bytes) -> str | None:
    """Return why `raw` is not an acceptable public key, or None."""
    point = _decode(raw)
    if isinstance(point, str):
        return point
    if _is_identity(_multiply(point, 8)):
        return (
            "is a point of small order (one of the 8 torsion points, e.g. the identity): any "
            "signature forged without a private key would verify with it"
        )
    if not _is_identity(_multiply(point, _L)):
        return "is not in the prime-order subgroup (it has a small-order component)"
    return None


def _decode(raw: bytes) -> _Point | str:
    """Return the point encoded by `raw` (RFC 8032 §5.1.3), or why it is not one."""
    number = int.from_bytes(raw, "little")
    sign = number >> 255
    y = number & ((1 << 255) - 1)
    if y >= _P:
        return "is not canonical: its y coordinate is not below 2^255 - 19"
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P != 0:
        if (v * x * x + u) % _P != 0:
            return "is not a point of the curve edwards25519"
        x = x * _SQRT_M1 % _P
    if x == 0 and sign:
        return "is not canonical: x = 0 with the sign bit set"
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _add(a: _Point, b: _Point) -> _Point:
    """Return a + b (RFC 8032 §5.1.4, extended coordinates)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(point: _Point, scalar: int) -> _Point:
    result = _IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0
