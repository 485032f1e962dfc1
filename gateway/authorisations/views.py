"""Authorisation routes: a holder authorises an operator."""

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.authorisations import service
from gateway.authorisations.models import Authorisation, AuthorisationCreate, AuthorisationRead
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import forbidden, not_found, problem_responses
from gateway.participants.models import Participant

router = APIRouter(prefix="/authorisations", tags=["authorisations"])


@router.post(
    "",
    status_code=201,
    response_model=AuthorisationRead,
    responses=problem_responses(401, 403, 404, 422),
)
def grant_authorisation(
    body: AuthorisationCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> AuthorisationRead:
    """Authorise an operator to develop products from the holder's resources (holders only)."""
    require_role(me, "holder")
    authorisation, entry = service.grant(session, gateway.signer, body=body, holder_id=me.id)
    return service.to_read(authorisation, entry)


@router.get(
    "/{authorisation_id}",
    response_model=AuthorisationRead,
    responses=problem_responses(401, 403, 404),
)
def get_authorisation(
    authorisation_id: str,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> AuthorisationRead:
    """Return an authorisation to its holder, its operator and auditors."""
    authorisation = session.get(Authorisation, authorisation_id)
    if authorisation is None:
        raise not_found("authorisation", authorisation_id)
    parties = {authorisation.holder_id, authorisation.operator_id}
    if me.id not in parties and not {"auditor", "admin"} & set(me.roles):
        raise forbidden("only the holder, the operator and auditors see an authorisation")
    return service.to_read(authorisation)
