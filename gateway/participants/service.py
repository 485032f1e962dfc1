"""Onboarding participants and bootstrapping the platform admin."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core import clock
from gateway.core.errors import conflict, not_found
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.participants import uscc
from gateway.participants.models import (
    JWKS,
    Participant,
    ParticipantCreate,
    ParticipantRead,
    PublicJWK,
)
from ledger import Entry, Signer, jwk_thumbprint

PLATFORM_USCC = "91110108MA01ABCDE"  # 17 characters; the check character is computed
PLATFORM_ADMIN_ID = "prt_platform"  # fixed, so that the admin key in the state folder can log in


def _public_jwks(body: ParticipantCreate) -> dict:
    """Return the JWKS to store: public members only, each key with its RFC 7638 kid."""
    keys = []
    for key in body.jwks.keys:
        jwk = {"kty": key.kty, "crv": key.crv, "x": key.x}
        jwk["kid"] = key.kid or jwk_thumbprint(jwk)
        jwk["alg"] = "EdDSA"
        jwk["use"] = "sig"
        keys.append(jwk)
    return {"keys": keys}


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


def get(session: Session, participant_id: str) -> Participant:
    """Return the participant, else raise 404."""
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise not_found("participant", participant_id)
    return participant


def to_read(participant: Participant, entry: Entry | None = None) -> ParticipantRead:
    """Return the API view of a participant."""
    return ParticipantRead(
        id=participant.id,
        name=participant.name,
        uscc=participant.uscc,
        roles=participant.roles,
        region=participant.region,
        status=participant.status,
        jwks=participant.jwks,
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
