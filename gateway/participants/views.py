"""Participant routes: onboarding by the platform admin, and look-up."""

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import problem_responses
from gateway.participants import service
from gateway.participants.models import Participant, ParticipantCreate, ParticipantRead

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


@router.get(
    "/{participant_id}", response_model=ParticipantRead, responses=problem_responses(401, 404)
)
def get_participant(
    participant_id: str,
    _: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ParticipantRead:
    """Return a participant's public record."""
    return service.to_read(service.get(session, participant_id))
