"""Onboarding participants and bootstrapping the platform admin."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core import clock
from gateway.core.db import fetch
from gateway.core.errors import conflict, forbidden, not_found
from gateway.core.ids import new_id
from gateway.core.states import StateMachine
from gateway.evidence.service import commit, record
from gateway.participants import uscc
from gateway.participants.models import (
    JWKS,
    Participant,
    ParticipantCreate,
    ParticipantRead,
    PublicJWK,
    is_usable_jwk,
)
from ledger import Entry, LedgerKeyError, Signer, jwk_thumbprint

PLATFORM_USCC = "91110108MA01ABCDE"  # 17 characters; the check character is computed
PLATFORM_ADMIN_ID = "prt_platform"  # fixed, so that the admin key in the state folder can log in

LIFECYCLE = StateMachine(
    "participant",
    {
        "active": {"suspend": "suspended"},
        "suspended": {"reinstate": "active"},
    },
)
EVENTS = {"suspend": "suspended", "reinstate": "reinstated"}


def _public_jwk(key: PublicJWK) -> dict:
    """Return the key to store: public members only, with its RFC 7638 kid unless it has one."""
    jwk = {"kty": key.kty, "crv": key.crv, "x": key.x}
    jwk["kid"] = key.kid or jwk_thumbprint(jwk)
    jwk["alg"] = key.alg or "EdDSA"
    jwk["use"] = "sig"
    return jwk


def _public_jwks(body: ParticipantCreate) -> dict:
    """Return the JWKS to store: public members only, each key with its RFC 7638 kid."""
    keys = [_public_jwk(key) for key in body.jwks.keys]
    kids = [k["kid"] for k in keys]
    if len(set(kids)) != len(kids):
        raise conflict("duplicate-key", "Duplicate key id", f"key ids must be unique: {kids}")
    thumbprints = [jwk_thumbprint(k) for k in keys]
    if len(set(thumbprints)) != len(thumbprints):
        raise conflict(
            "duplicate-key", "Duplicate key", "the same public key is listed twice under two kids"
        )
    return {"keys": keys}


def _thumbprints(keys: list) -> dict[str, str]:
    """Return the RFC 7638 thumbprints of stored keys, each with its kid (unreadable skipped)."""
    found = {}
    for key in keys or []:
        try:
            found[jwk_thumbprint(key)] = key.get("kid")
        except LedgerKeyError:
            continue
    return found


def register(
    session: Session,
    signer: Signer,
    *,
    body: ParticipantCreate,
    actor: str,
    participant_id: str | None = None,
) -> tuple[Participant, Entry]:
    """Create a participant and its ledger entry; raise 409 if the USCC is already registered."""
    existing = session.execute(
        select(Participant.id).where(Participant.uscc == body.uscc)
    ).scalar_one_or_none()
    if existing is not None:
        raise conflict(
            "participant-exists",
            "Participant already registered",
            f"unified social credit code {body.uscc} is already registered as {existing}",
            participant_id=existing,
        )
    participant = Participant(
        id=participant_id or new_id("prt"),
        name=body.name,
        uscc=body.uscc,
        roles=list(body.roles),
        region=body.region,
        status="active",
        jwks=_public_jwks(body),
        created_at=clock.now(),
    )
    session.add(participant)
    session.flush()
    entry = record(
        session,
        signer,
        type="participant.registered",
        data={
            "participant": participant.id,
            "name": participant.name,
            "uscc": participant.uscc,
            "roles": participant.roles,
            "region": participant.region,
            "kids": [k["kid"] for k in participant.jwks["keys"]],
            "by": actor,
        },
    )
    commit(session)
    return participant, entry


def list_participants(
    session: Session, *, status: str | None, offset: int, limit: int
) -> list[Participant]:
    """Return participants (in one status, if given), newest first."""
    query = select(Participant).order_by(Participant.created_at.desc(), Participant.id)
    if status is not None:
        query = query.where(Participant.status == status)
    return list(session.execute(query.offset(offset).limit(limit)).scalars())


def get(session: Session, participant_id: str, *, for_update: bool = False) -> Participant:
    """Return the participant (locked for update when asked), else raise 404."""
    return fetch(session, Participant, participant_id, kind="participant", for_update=for_update)


def _may_manage_keys(participant: Participant, actor: Participant) -> None:
    """Raise 403 unless `actor` is the participant itself or the platform admin."""
    if actor.id != participant.id and "admin" not in actor.roles:
        raise forbidden("only the participant itself or the platform admin manages its keys")


def add_key(
    session: Session, signer: Signer, *, participant_id: str, key: PublicJWK, actor: Participant
) -> tuple[Participant, Entry]:
    """Add a public key to the participant's JWKS; raise 409 if its kid is taken or the key
    material (its RFC 7638 thumbprint) is active or was retired, under whatever kid."""
    participant = get(session, participant_id, for_update=True)
    _may_manage_keys(participant, actor)
    jwk = _public_jwk(key)
    thumbprint = jwk_thumbprint(jwk)
    retired = _thumbprints(participant.retired_keys)
    if thumbprint in retired:
        raise conflict(
            "retired-key",
            "A retired key cannot come back",
            f"this public key (RFC 7638 thumbprint {thumbprint}) was retired as "
            f"{retired[thumbprint]!r} of {participant.id}; retirement is of the key material, "
            "whatever kid it is given: generate a new key",
            thumbprint=thumbprint,
        )
    active = _thumbprints(participant.jwks.get("keys"))
    if thumbprint in active:
        raise conflict(
            "duplicate-key",
            "Duplicate key",
            f"this public key is already active as {active[thumbprint]!r} of {participant.id}",
            kid=active[thumbprint],
        )
    known = {k.get("kid") for k in participant.jwks["keys"]} | {
        k.get("kid") for k in participant.retired_keys or []
    }
    if jwk["kid"] in known:
        raise conflict(
            "duplicate-key",
            "Duplicate key id",
            f"participant {participant.id} already has (or had) a key {jwk['kid']!r}; a retired "
            "kid is never reused",
            kid=jwk["kid"],
        )
    if len(participant.jwks["keys"]) >= 10:
        raise conflict("too-many-keys", "Too many keys", "a participant has at most 10 active keys")
    participant.jwks = {"keys": [*participant.jwks["keys"], jwk]}
    entry = record(
        session,
        signer,
        type="participant.key_added",
        data={"participant": participant.id, "kid": jwk["kid"], "key": jwk, "by": actor.id},
    )
    commit(session)
    return participant, entry


def retire_key(
    session: Session,
    signer: Signer,
    *,
    participant_id: str,
    kid: str,
    actor: Participant,
    reason: str = "",
) -> tuple[Participant, Entry]:
    """Retire a key: it no longer authenticates or signs, and tokens issued so far die."""
    participant = get(session, participant_id, for_update=True)
    _may_manage_keys(participant, actor)
    active = participant.jwks["keys"]
    key = next((k for k in active if k.get("kid") == kid), None)
    if key is None:
        if any(k.get("kid") == kid for k in participant.retired_keys or []):
            raise conflict(
                "key-retired", "Key already retired", f"key {kid!r} of {participant.id} is retired"
            )
        raise not_found("key", kid)
    remaining = [k for k in active if k.get("kid") != kid]
    if not any(is_usable_jwk(k) for k in remaining):
        raise conflict(
            "last-key",
            "Cannot retire the last key",
            f"{kid!r} is the only usable active key of {participant.id}; add its successor first",
            active_kids=[k.get("kid") for k in active],
        )
    now = clock.now()
    participant.jwks = {"keys": remaining}
    participant.retired_keys = [
        *(participant.retired_keys or []),
        {**key, "retired_at": clock.rfc3339(now)},
    ]
    participant.tokens_not_before = now
    entry = record(
        session,
        signer,
        type="participant.key_retired",
        data={"participant": participant.id, "kid": kid, "by": actor.id, "reason": reason},
    )
    commit(session)
    return participant, entry


def change_status(
    session: Session,
    signer: Signer,
    *,
    participant_id: str,
    action: str,
    actor: str,
    reason: str,
) -> tuple[Participant, Entry]:
    """Suspend or reinstate a participant (admin); its tokens stop or start working at once."""
    participant = get(session, participant_id, for_update=True)
    if participant.id == PLATFORM_ADMIN_ID:
        raise forbidden("the platform administrator cannot be suspended")
    before = participant.status
    participant.status = LIFECYCLE.advance(participant.id, before, action)
    entry = record(
        session,
        signer,
        type=f"participant.{EVENTS[action]}",
        data={
            "participant": participant.id,
            "from": before,
            "to": participant.status,
            "by": actor,
            "reason": reason,
        },
    )
    commit(session)
    return participant, entry


def to_read(participant: Participant, entry: Entry | None = None) -> ParticipantRead:
    """Return the API view of a participant."""
    return ParticipantRead(
        id=participant.id,
        name=participant.name,
        uscc=participant.uscc,
        roles=participant.roles,
        region=participant.region,
        status=participant.status,
        allowed_actions=LIFECYCLE.actions(participant.status),
        jwks=participant.jwks,
        retired_keys=participant.retired_keys or [],
        created_at=participant.created_at,
        ledger_seq=entry.seq if entry else None,
    )


def ensure_admin(session: Session, signer: Signer, *, admin_key: Signer) -> Participant:
    """Return the platform admin, registering it with `admin_key` on first start."""
    found = session.get(Participant, PLATFORM_ADMIN_ID)
    if found is not None:
        return found
    public = admin_key.public_jwk()
    body = ParticipantCreate(
        name="Platform administrator",
        uscc=uscc.complete(PLATFORM_USCC),
        roles=["admin", "auditor"],
        region="domestic",
        jwks=JWKS(keys=[PublicJWK(kty="OKP", crv="Ed25519", x=public["x"], kid=public["kid"])]),
    )
    participant, _ = register(
        session, signer, body=body, actor="gateway", participant_id=PLATFORM_ADMIN_ID
    )
    return participant
