"""The peer registry, and the check of a peer gateway's signed token on a DSP request.

A peer token is a JWS (EdDSA / Ed25519, RFC 8037 / RFC 9864) the peer gateway signs with one of
its registered keys, in the manner of the Decentralized Claims Protocol's self-issued ID token:
`iss` = `sub` = the peer's id, `aud` = this gateway's DSP participantId (its issuer), `iat` and
`exp` at most `MAX_TOKEN_SECONDS` apart (checked against the gateway clock), a `jti` never seen
before, and `participant_id`: the participant of this gateway, whose home the peer is, that it
acts for. specs/dsp.md (*Authentication*) is the contract.
"""

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import jwt
from jwt.algorithms import OKPAlgorithm
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.core import clock
from gateway.core.config import Settings
from gateway.core.errors import Problem, conflict, not_found, unprocessable
from gateway.core.types import ID_PATTERN
from gateway.dataplane import egress
from gateway.evidence.service import commit, record
from gateway.participants.models import ED25519_ALGS, JWKS, Participant, is_usable_jwk
from gateway.peers.models import PEER_ID_MAX, Peer, PeerCreate, PeerRead, UsedPeerToken
from ledger import Entry, Signer

# A peer token lives at most this long (exp - iat, and exp ahead of the gateway clock).
MAX_TOKEN_SECONDS = 300
# Allowance for clock skew between the peer and this gateway, in seconds (as gateway/auth).
LEEWAY = 5
# The largest JWKS document fetched from a peer's jwks_url.
MAX_JWKS_BYTES = 64 * 1024

_PEER_TOKENS = jwt.PyJWT()
_PEER_TOKENS._jws.register_algorithm("Ed25519", OKPAlgorithm())


def get(session: Session, peer_id: str) -> Peer:
    """Return a registered peer, else raise 404."""
    peer = session.get(Peer, peer_id[:PEER_ID_MAX])
    if peer is None:
        raise not_found("peer", peer_id[:PEER_ID_MAX])
    return peer


def list_peers(session: Session) -> list[Peer]:
    """Return every registered peer, by id."""
    return list(session.scalars(select(Peer).order_by(Peer.id)))


def fetch_jwks(settings: Settings, url: str) -> dict[str, Any]:
    """Return the JWKS at `url`, fetched once under the egress rules of the data plane (no
    internal address the operator did not allow, none of the gateway's own services), else 422."""
    try:
        egress.check_sink(
            url,
            allowed=egress.parse_networks(settings.sink_allowed_networks),
            own=egress.own_services(
                [settings.opa_url, settings.issuer, settings.resolved_database_url]
            ),
        )
    except ValueError as exc:  # a URL urlsplit cannot read (an unclosed IPv6 bracket, …)
        raise unprocessable(f"jwks_url: not a URL the gateway can read ({exc})") from None
    content = b""
    try:
        with httpx.stream("GET", url, timeout=5, follow_redirects=False) as answer:
            status = answer.status_code
            for chunk in answer.iter_bytes():
                content += chunk
                if len(content) > MAX_JWKS_BYTES:
                    break
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise unprocessable(f"jwks_url {url}: cannot fetch it ({exc})") from None
    if status != 200 or len(content) > MAX_JWKS_BYTES:
        raise unprocessable(
            f"jwks_url {url}: answered {status} with {len(content)} bytes or more "
            f"(a JWKS is a 200 of at most {MAX_JWKS_BYTES} bytes)"
        )
    try:
        return JWKS.model_validate_json(content).model_dump(exclude_none=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise unprocessable(f"jwks_url {url}: not an Ed25519 JWKS ({first['msg']})") from None


def register(
    session: Session, signer: Signer, settings: Settings, *, body: PeerCreate, actor: str
) -> tuple[Peer, Entry]:
    """Register a peer gateway (ledger entry `peer.registered`)."""
    if body.id.rstrip("/") == settings.issuer.rstrip("/"):
        raise unprocessable(f"{body.id} is this gateway's own issuer, not a peer")
    if body.kind == "dsp":
        if body.jwks is not None or body.jwks_url is not None:
            raise unprocessable(
                "a dsp peer (no dsgw gateway) has no keys: it signs no peer tokens (its "
                "participants here, if any, authenticate with this gateway's own access tokens)"
            )
        jwks: dict[str, Any] = {"keys": []}
    elif (body.jwks is None) == (body.jwks_url is None):
        raise unprocessable("give the peer's keys either inline (jwks) or as a jwks_url")
    else:
        # Fetched before any database work: no transaction (on SQLite, the write turn) is
        # held while a peer's server answers.
        jwks = (
            body.jwks.model_dump(exclude_none=True)
            if body.jwks is not None
            else fetch_jwks(settings, body.jwks_url or "")
        )
    if session.get(Peer, body.id) is not None:
        raise conflict("peer-exists", "Peer already registered", f"peer {body.id} is registered")
    homes = {p: peer.id for peer in list_peers(session) for p in peer.participants}
    for participant_id in body.participants:
        if participant_id in homes:
            raise conflict(
                "participant-has-home",
                "Participant already has a home peer",
                f"participant {participant_id}'s home is peer {homes[participant_id]}: a "
                "participant has one home gateway",
            )
        found = session.get(Participant, participant_id)
        if found is None:
            raise unprocessable(
                f"participant {participant_id} is not registered here: onboard it first "
                "(POST /participants), as any participant"
            )
        if "admin" in found.roles:
            raise unprocessable(f"participant {participant_id} is an admin: no peer acts for it")
    if body.kind == "dsgw" and not all(is_usable_jwk(k) for k in jwks["keys"]):
        raise unprocessable("every key of a peer's JWKS needs its kid (RFC 7517 §4.5)")
    for participant_id in body.accounts:
        found = session.get(Participant, participant_id)
        if found is None or "admin" in found.roles:
            raise unprocessable(
                f"accounts: {participant_id} is not a participant of this gateway the peer may "
                "see acting (registered here, not an admin)"
            )
    now = clock.now()
    peer = Peer(
        id=body.id,
        kind=body.kind,
        dsp_url=body.dsp_url.rstrip("/"),
        jwks=jwks,
        jwks_url=body.jwks_url,
        participants=sorted(set(body.participants)),
        accounts=dict(sorted(body.accounts.items())),
        status="active",
        created_at=now,
        updated_at=now,
    )
    session.add(peer)
    session.flush()
    entry = record(
        session,
        signer,
        type="peer.registered",
        data={
            "peer": peer.id,
            "kind": peer.kind,
            "dsp_url": peer.dsp_url,
            "jwks": peer.jwks,
            "jwks_url": peer.jwks_url,
            "participants": peer.participants,
            "accounts": peer.accounts,
            "by": actor,
        },
    )
    commit(session)
    return peer, entry


_MOVES = {"suspend": ("active", "suspended", "peer.suspended"),
          "reactivate": ("suspended", "active", "peer.reactivated")}  # fmt: skip


def change_status(
    session: Session, signer: Signer, *, peer_id: str, action: str, reason: str, actor: str
) -> tuple[Peer, Entry]:
    """Suspend or reactivate a peer (ledger entry `peer.suspended` / `peer.reactivated`)."""
    source, target, type_ = _MOVES[action]
    peer = get(session, peer_id)
    if peer.status != source:
        raise conflict(
            "invalid-transition",
            "Invalid peer transition",
            f"peer {peer.id} is {peer.status}: only a {source} peer can be told to {action}",
            current_state=peer.status,
        )
    peer.status = target
    peer.updated_at = clock.now()
    entry = record(
        session,
        signer,
        type=type_,
        data={"peer": peer.id, "reason": reason, "by": actor},
    )
    commit(session)
    return peer, entry


def to_read(peer: Peer, entry: Entry | None = None) -> PeerRead:
    """Return a peer's public record."""
    return PeerRead(
        id=peer.id,
        kind=peer.kind or "dsgw",
        dsp_url=peer.dsp_url,
        jwks=peer.jwks,
        jwks_url=peer.jwks_url,
        participants=list(peer.participants),
        accounts=dict(peer.accounts or {}),
        status=peer.status,
        created_at=peer.created_at,
        updated_at=peer.updated_at,
        ledger_seq=entry.seq if entry is not None else None,
    )


# -- peer tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal(Exception):
    """A peer token refused: why (a stable slug), what the token claimed, and a detail."""

    reason: str
    issuer: str
    detail: str


def _printable(value: str) -> str:
    """Return `value` with anything a database or a ledger entry cannot hold as text (NUL and
    other control characters, lone surrogates) replaced by `?`: a claim is untrusted input."""
    return "".join(
        "?" if (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000) else c
        for c in value
    )


def claimed_issuer(token: str, own_issuer: str) -> str | None:
    """Return the `iss` a token claims when it is not this gateway's own (so a peer token, to
    be checked as one); None for our own tokens and for text that is no JWT at all."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(iss, str) or iss.rstrip("/") == own_issuer.rstrip("/"):
        return None
    return iss


def authenticate(session: Session, settings: Settings, token: str, issuer: str) -> Participant:
    """Return the participant a valid peer token acts for; else raise `Refusal`.

    The token's `jti` is kept (in the session's transaction) until the token expires."""
    claimed = _printable(issuer[:PEER_ID_MAX])
    # Registered ids are printable and bounded: any other is no peer (and is not looked up).
    fits = len(issuer) <= PEER_ID_MAX and claimed == issuer
    peer = session.get(Peer, claimed) if fits else None
    if peer is None:
        raise Refusal("unknown-peer", claimed, "the token's issuer is not a registered peer")
    if peer.status != "active":
        raise Refusal("suspended-peer", claimed, f"peer {peer.id} is {peer.status}")
    if peer.kind == "dsp":
        raise Refusal("not-dsgw-peer", claimed, f"peer {peer.id} is a dsp peer: it signs no tokens")
    claims = _verified(peer, token, settings)
    _check_time(peer, claims)
    _use_jti(session, peer, claims)
    return _acting_for(session, peer, claims)


def authenticate_gateway(session: Session, settings: Settings, token: str, issuer: str) -> Peer:
    """Return the registered, active peer gateway that signed `token` for itself (a callback on
    one of our processes: no participant is named); else raise `Refusal`."""
    claimed = _printable(issuer[:PEER_ID_MAX])
    fits = len(issuer) <= PEER_ID_MAX and claimed == issuer
    peer = session.get(Peer, claimed) if fits else None
    if peer is None:
        raise Refusal("unknown-peer", claimed, "the token's issuer is not a registered peer")
    if peer.status != "active":
        raise Refusal("suspended-peer", claimed, f"peer {peer.id} is {peer.status}")
    if peer.kind == "dsp":
        raise Refusal("not-dsgw-peer", claimed, f"peer {peer.id} is a dsp peer: it signs no tokens")
    claims = _verified(peer, token, settings)
    _check_time(peer, claims)
    _use_jti(session, peer, claims)
    return peer


def home_of(session: Session, participant_id: str) -> Peer | None:
    """Return the peer gateway (`kind: dsgw`) whose participant `participant_id` is (its home
    gateway), or None."""
    return next(
        (
            p
            for p in list_peers(session)
            if participant_id in p.participants and (p.kind or "dsgw") == "dsgw"
        ),
        None,
    )


def connector_home_of(session: Session, participant_id: str) -> Peer | None:
    """Return the registered, active DSP connector (`kind: dsp` peer) whose participant
    `participant_id` is, or None: such a consumer verifies a DSP agreement by its
    authenticated verification message, not by a JWS (specs/dsp.md)."""
    return next(
        (
            p
            for p in list_peers(session)
            if participant_id in p.participants and p.kind == "dsp" and p.status == "active"
        ),
        None,
    )


def sign_token(
    signer: Signer, *, issuer: str, audience: str, participant_id: str | None, lifetime: int = 60
) -> str:
    """Return this gateway's own peer token for one request to the peer `audience` (EdDSA,
    signed with the gateway key its JWKS publishes; specs/dsp.md *Authentication*)."""
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + min(lifetime, MAX_TOKEN_SECONDS),
        "jti": secrets.token_urlsafe(24),
    }
    if participant_id is not None:
        claims["participant_id"] = participant_id
    private = OKPAlgorithm.from_jwk(signer.private_jwk())
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": signer.kid})


def _verified(peer: Peer, token: str, settings: Settings) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Refusal("malformed", peer.id, f"the token is not a JWS: {exc}") from None
    if header.get("alg") not in ED25519_ALGS:
        raise Refusal("bad-signature", peer.id, f"alg {header.get('alg')!r}: EdDSA or Ed25519")
    kid = header.get("kid")
    keys = [k for k in peer.jwks.get("keys", []) if is_usable_jwk(k)]
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    audiences = sorted({settings.issuer, settings.issuer.rstrip("/")})
    for jwk in keys:
        public = OKPAlgorithm.from_jwk({k: jwk[k] for k in ("kty", "crv", "x")})
        try:
            claims = _PEER_TOKENS.decode(
                token,
                public,
                algorithms=list(ED25519_ALGS),
                audience=audiences,
                issuer=peer.id,
                # Time is the gateway clock's, checked below.
                options={
                    "require": ["iss", "sub", "aud", "iat", "exp", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidAudienceError:
            raise Refusal(
                "wrong-audience", peer.id, f"aud must be this gateway, {settings.issuer!r}"
            ) from None
        except jwt.PyJWTError as exc:
            raise Refusal("malformed", peer.id, f"the token is not valid: {exc}") from None
        if claims.get("sub") != peer.id:
            raise Refusal("malformed", peer.id, "sub must be the peer's id, as iss")
        return claims
    raise Refusal(
        "bad-signature", peer.id, "the token does not verify with the peer's registered keys"
    )


def _check_time(peer: Peer, claims: dict[str, Any]) -> None:
    now = clock.now().timestamp()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not all(isinstance(t, int | float) and math.isfinite(t) for t in (iat, exp)):
        raise Refusal("malformed", peer.id, "iat and exp must be NumericDates")
    if exp <= now - LEEWAY:
        raise Refusal("expired", peer.id, "the token has expired")
    if iat > now + LEEWAY:
        raise Refusal("not-yet-valid", peer.id, "the token was issued in the future (iat)")
    if exp - iat > MAX_TOKEN_SECONDS or exp > now + MAX_TOKEN_SECONDS + LEEWAY:
        raise Refusal(
            "too-long-lived", peer.id, f"a peer token lives at most {MAX_TOKEN_SECONDS} s"
        )


def _use_jti(session: Session, peer: Peer, claims: dict[str, Any]) -> None:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 200 or _printable(jti) != jti:
        raise Refusal("malformed", peer.id, "jti: a string of at most 200 characters")
    now = clock.now()
    session.execute(delete(UsedPeerToken).where(UsedPeerToken.expires_at < now))
    remaining = max(0.0, float(claims["exp"]) - now.timestamp())
    try:
        with session.begin_nested():
            session.add(
                UsedPeerToken(
                    peer_id=peer.id,
                    jti=jti,
                    expires_at=now + timedelta(seconds=remaining + LEEWAY),
                )
            )
    except IntegrityError:
        raise Refusal("replayed", peer.id, f"jti {jti[:80]!r} was used before") from None


def _acting_for(session: Session, peer: Peer, claims: dict[str, Any]) -> Participant:
    named = claims.get("participant_id")
    if not isinstance(named, str) or not re.fullmatch(ID_PATTERN, named):
        raise Refusal("malformed", peer.id, "participant_id: the participant the peer acts for")
    participant = session.get(Participant, named)
    if participant is None:
        raise Refusal("unknown-participant", peer.id, f"{named} is not registered here")
    if named not in peer.participants:
        raise Refusal("not-peer-participant", peer.id, f"{named}'s home is not peer {peer.id}")
    if participant.status != "active":
        raise Refusal("suspended-participant", peer.id, f"{named} is {participant.status}")
    return participant


def record_refusal(
    session: Session, signer: Signer, refusal: Refusal, *, method: str, path: str
) -> Entry:
    """Record a refused peer request (`dsp.peer-refused`: the reason and the claimed issuer,
    never the token), committed; raise 503 if the ledger cannot record it (fail closed)."""
    session.rollback()  # nothing of the refused request stays (a jti it may have used)
    entry = record(
        session,
        signer,
        type="dsp.peer-refused",
        data={
            "claimed_issuer": refusal.issuer,
            "reason": refusal.reason,
            "detail": _printable(refusal.detail[:500]),
            "method": method,
            "path": path[:500],
        },
    )
    commit(session)
    return entry


def refused(refusal: Refusal) -> Problem:
    """Return the 401 problem for a refused peer token."""
    return Problem(
        401,
        "peer-refused",
        "Peer not trusted",
        f"peer token refused ({refusal.reason}): {refusal.detail}",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        refusal=refusal.reason,
    )


# -- "dsp" peers (no dsgw gateway): the per-process callback key -----------------------------


def new_callback_key() -> tuple[str, str]:
    """Return (a fresh callback key, its SHA-256 hex): the key goes in the callback address of
    one request to a "dsp" peer; only the hash is kept."""
    key = secrets.token_urlsafe(32)
    return key, callback_key_hash(key)


def callback_key_hash(key: str) -> str:
    """Return the SHA-256 (hex) of a callback key."""
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def callback_key_matches(key: str, expected_hash: str | None) -> bool:
    """Whether `key` is the one whose hash is `expected_hash` (compared in constant time)."""
    if not expected_hash:
        return False
    return hmac.compare_digest(callback_key_hash(key), expected_hash)
