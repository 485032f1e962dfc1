"""Participant routes: onboarding by the platform admin, and look-up."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import forbidden, problem_responses
from gateway.core.types import MAX_OFFSET, ObjectId
from gateway.participants import service
from gateway.participants.models import (
    KID_MAX,
    JWKSRead,
    KeyRetirement,
    Participant,
    ParticipantCreate,
    ParticipantRead,
    PublicJWK,
    StatusChange,
)

router = APIRouter(prefix="/participants", tags=["participants"])


@router.post(
    "",
    status_code=201,
    response_model=ParticipantRead,
    responses=problem_responses(401, 403, 409, 422),
)
def register_participant(
    body: ParticipantCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ParticipantRead:
    """Onboard an organisation with its roles and Ed25519 public keys (admin only)."""
    require_role(me, "admin")
    participant, entry = service.register(session, gateway.signer, body=body, actor=me.id)
    return service.to_read(participant, entry)


@router.get("", response_model=list[ParticipantRead], responses=problem_responses(401, 403, 422))
def list_participants(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    status: Literal["active", "suspended"] | None = Query(None, description="only this status"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=500),
) -> list[ParticipantRead]:
    """Return the participants, newest first (the platform admin and auditors)."""
    if not {"admin", "auditor"} & set(me.roles):
        raise forbidden("only the platform admin and auditors list participants")
    return [
        service.to_read(p)
        for p in service.list_participants(session, status=status, offset=offset, limit=limit)
    ]


@router.get(
    "/{participant_id}", response_model=ParticipantRead, responses=problem_responses(401, 404)
)
def get_participant(
    participant_id: ObjectId,
    _: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ParticipantRead:
    """Return a participant's public record."""
    return service.to_read(service.get(session, participant_id))


@router.get(
    "/{participant_id}/jwks", response_model=JWKSRead, responses=problem_responses(401, 404)
)
def get_participant_jwks(
    participant_id: ObjectId,
    _: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> dict:
    """Return the participant's usable active public keys (RFC 7517): retired keys are not in
    it, nor a key stored before today's checks that fails them."""
    return {"keys": service.get(session, participant_id).usable_keys()}


@router.post(
    "/{participant_id}/keys",
    status_code=201,
    response_model=ParticipantRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def add_participant_key(
    participant_id: ObjectId,
    body: PublicJWK,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ParticipantRead:
    """Add an Ed25519 public key to a participant's JWKS (the participant itself or the admin)."""
    participant, entry = service.add_key(
        session, gateway.signer, participant_id=participant_id, key=body, actor=me
    )
    return service.to_read(participant, entry)


@router.post(
    "/{participant_id}/keys/{kid}/retire",
    response_model=ParticipantRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def retire_participant_key(
    participant_id: ObjectId,
    kid: Annotated[str, Path(max_length=KID_MAX)],
    body: KeyRetirement | None = None,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ParticipantRead:
    """Retire a key: it stops authenticating and signing; the participant's tokens are revoked."""
    participant, entry = service.retire_key(
        session,
        gateway.signer,
        participant_id=participant_id,
        kid=kid,
        actor=me,
        reason=body.reason if body else "",
    )
    return service.to_read(participant, entry)


def _status_route(action: str, summary: str):
    def change(
        participant_id: ObjectId,
        body: StatusChange,
        me: Participant = Depends(current_participant),
        session: Session = Depends(get_session),
        gateway: Gateway = Depends(get_gateway),
    ) -> ParticipantRead:
        require_role(me, "admin")
        participant, entry = service.change_status(
            session,
            gateway.signer,
            participant_id=participant_id,
            action=action,
            actor=me.id,
            reason=body.reason,
        )
        return service.to_read(participant, entry)

    change.__doc__ = summary
    change.__name__ = f"{action}_participant"
    router.post(
        f"/{{participant_id}}/{action}",
        response_model=ParticipantRead,
        responses=problem_responses(401, 403, 404, 409, 422),
    )(change)


_status_route("suspend", "Suspend a participant (admin): its tokens stop working at once.")
_status_route("reinstate", "Reinstate a suspended participant (admin).")
