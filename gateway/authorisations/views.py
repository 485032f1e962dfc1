"""Authorisation routes: a holder authorises an operator."""

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.authorisations import service
from gateway.authorisations.models import (
    AuthorisationCreate,
    AuthorisationRead,
    Revocation,
    SweepResult,
)
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import forbidden, problem_responses
from gateway.core.types import MAX_OFFSET, ObjectId
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


@router.get("", response_model=list[AuthorisationRead], responses=problem_responses(401, 422))
def list_authorisations(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=500),
) -> list[AuthorisationRead]:
    """Return the authorisations the caller granted (holder) or holds (operator), oldest first;
    every one to the admin and auditors."""
    return [
        service.to_read(a) for a in service.list_for(session, viewer=me, offset=offset, limit=limit)
    ]


@router.get(
    "/{authorisation_id}",
    response_model=AuthorisationRead,
    responses=problem_responses(401, 403, 404),
)
def get_authorisation(
    authorisation_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> AuthorisationRead:
    """Return an authorisation to its holder, its operator and auditors (ending it if over)."""
    authorisation = service.get(session, authorisation_id)
    parties = {authorisation.holder_id, authorisation.operator_id}
    if me.id not in parties and not {"auditor", "admin"} & set(me.roles):
        raise forbidden("only the holder, the operator and auditors see an authorisation")
    service.expire_if_over(session, gateway.signer, authorisation)
    return service.to_read(authorisation)


@router.post(
    "/{authorisation_id}/revoke",
    response_model=AuthorisationRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def revoke_authorisation(
    authorisation_id: ObjectId,
    body: Revocation,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> AuthorisationRead:
    """Revoke an authorisation (its holder): its listed products are suspended at once."""
    authorisation, entry, _ = service.revoke(
        session,
        gateway.signer,
        authorisation_id=authorisation_id,
        holder_id=me.id,
        reason=body.reason,
    )
    return service.to_read(authorisation, entry)


@router.post("/sweep", response_model=SweepResult, responses=problem_responses(401, 403))
def sweep_authorisations(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> SweepResult:
    """End every authorisation past its term and suspend its products (admin)."""
    require_role(me, "admin")
    return service.sweep(session, gateway.signer)
