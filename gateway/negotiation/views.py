"""Contract routes: request, holder approval, signing, suspension, revocation, termination, read."""

from typing import Literal

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy.orm import Session

from contracts import ContractState
from gateway.auth.views import current_participant
from gateway.compute import flows as compute
from gateway.compute.models import BudgetRead
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import problem_responses
from gateway.core.types import MAX_OFFSET, ObjectId
from gateway.negotiation import service
from gateway.negotiation.models import (
    ContractAction,
    ContractRead,
    ContractRequest,
    ContractSignature,
)
from gateway.participants.models import Participant

router = APIRouter(prefix="/contracts", tags=["contracts"])
_ERRORS = problem_responses(401, 403, 404, 409, 422)


@router.post("", status_code=201, response_model=ContractRead, responses=_ERRORS)
def request_contract(
    body: ContractRequest,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ContractRead:
    """Request an offer for a purpose (consumers); returns the document both parties sign."""
    contract, entry = service.request(session, gateway, body=body, consumer=me)
    return service.to_read(contract, entry)


@router.post("/{contract_id}/agree", response_model=ContractRead, responses=_ERRORS)
def agree_contract(
    contract_id: ObjectId,
    body: ContractSignature,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ContractRead:
    """The provider signs the contract document (JWS, EdDSA): REQUESTED → AGREED."""
    contract, entry = service.agree(
        session, gateway, contract_id=contract_id, provider=me, jws=body.signature
    )
    return service.to_read(contract, entry)


@router.post("/{contract_id}/verify", response_model=ContractRead, responses=_ERRORS)
def verify_contract(
    contract_id: ObjectId,
    body: ContractSignature,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ContractRead:
    """The consumer signs; the gateway countersigns: AGREED → VERIFIED → FINALIZED."""
    contract, entry = service.verify(
        session, gateway, contract_id=contract_id, consumer=me, jws=body.signature
    )
    return service.to_read(contract, entry)


@router.post("/{contract_id}/approve", response_model=ContractRead, responses=_ERRORS)
def approve_contract(
    contract_id: ObjectId,
    body: ContractAction | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ContractRead:
    """The data holder approves a REQUESTED contract on important data (needed before AGREED)."""
    contract, entry = service.approve(
        session, gateway, contract_id=contract_id, holder=me, reason=body.reason if body else ""
    )
    return service.to_read(contract, entry)


@router.post("/{contract_id}/{action}", response_model=ContractRead, responses=_ERRORS)
def end_or_pause_contract(
    contract_id: ObjectId,
    action: Literal["refuse", "suspend", "reinstate", "revoke", "terminate"],
    body: ContractAction | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ContractRead:
    """Change a contract's course: `refuse` (the holder, instead of approving: → TERMINATED),
    `suspend` / `reinstate` (provider or admin: FINALIZED ⇄ SUSPENDED), `revoke` (provider, holder
    or admin: → REVOKED), `terminate` (a party, as the offer's `termination` term allows once
    FINALIZED: → TERMINATED). The very next exchange under a suspended, revoked or terminated
    contract is refused."""
    contract, entry = service.act(
        session,
        gateway,
        contract_id=contract_id,
        action=action,
        actor=me,
        reason=body.reason if body else "",
    )
    return service.to_read(contract, entry)


@router.get("", response_model=list[ContractRead], responses=problem_responses(401, 422))
def list_contracts(
    role: Literal["consumer", "provider", "holder"] | None = Query(
        None, description="only the contracts the caller is this party of"
    ),
    state: ContractState | None = Query(None, description="only contracts in this state"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=200),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> list[ContractRead]:
    """Return the caller's contracts (as consumer, provider or holder), newest first, with their
    usage beside their quotas; auditors and admins see every contract unless `role` narrows it."""
    found = service.list_visible(
        session,
        gateway,
        viewer=me,
        role=role,
        state=state.value if state else None,
        offset=offset,
        limit=limit,
    )
    return [service.to_read(c) for c in found]


@router.get("/{contract_id}", response_model=ContractRead, responses=problem_responses(401, 404))
def get_contract(
    contract_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ContractRead:
    """Return a contract to its parties, its data holder and auditors; a running contract past
    its term is shown (and recorded, once) as EXPIRED. For anyone else it does not exist (404)."""
    service.get(session, contract_id, viewer=me)
    return service.to_read(service.current(session, gateway, contract_id))


@router.get(
    "/{contract_id}/privacy-budget",
    response_model=BudgetRead,
    responses=problem_responses(401, 404, 409, 503),
)
def get_privacy_budget(
    contract_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> BudgetRead:
    """Return a compute contract's privacy budget before (or between) its queries: ε spent,
    budget and remaining under the contract and for its consumer on the resource, as the policy
    sets them for the strictest query its terms declare (specs/compute.md). To the contract's
    parties, its data holder, auditors and admins; 404 for anyone else; 409 without compute
    terms; 503 when the policy engine cannot answer (no figure is guessed)."""
    return compute.privacy_budget(session, gateway, contract_id=contract_id, viewer=me)
