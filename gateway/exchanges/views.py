"""Exchange routes: pull data under a contract, and read any recorded decision."""

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import forbidden, not_found, problem_responses
from gateway.core.types import ObjectId
from gateway.exchanges import flows
from gateway.exchanges.models import Decision, DecisionRead, ExchangeRequest, ExchangeResult
from gateway.negotiation.models import Contract
from gateway.participants.models import Participant

router = APIRouter(tags=["exchanges"])


@router.post(
    "/exchanges",
    response_model=ExchangeResult,
    responses=problem_responses(401, 403, 404, 422, 503),
)
def pull(
    body: ExchangeRequest,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ExchangeResult:
    """Pull rows under a contract for a purpose; OPA decides, obligations apply, evidence first."""
    return flows.exchange(session, gateway, subject=me, request=body)


@router.get(
    "/decisions/{decision_id}",
    response_model=DecisionRead,
    responses=problem_responses(401, 403, 404),
)
def get_decision(
    decision_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> DecisionRead:
    """Return a recorded decision (input, result) to the exchange's parties and auditors."""
    decision = session.get(Decision, decision_id)
    if decision is None:
        raise not_found("decision", decision_id)
    contract = session.get(Contract, decision.contract_id) if decision.contract_id else None
    parties = {decision.subject_id}
    if contract is not None:
        parties |= {contract.provider_id, contract.consumer_id}
    if me.id not in parties and not {"auditor", "admin"} & set(me.roles):
        raise forbidden("only the parties of an exchange and auditors can read its decision")
    return DecisionRead.model_validate(decision, from_attributes=True)
