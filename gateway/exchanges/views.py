"""Exchange routes: pull data under a contract or open data without one; read any decision."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from gateway.auth.views import bearer_claims, current_participant, participant_of
from gateway.context import Gateway, get_gateway, get_session
from gateway.core import idempotency
from gateway.core.errors import not_found, problem_responses, unprocessable
from gateway.core.types import ObjectId
from gateway.dataplane.encoders import preferred_data_format
from gateway.exchanges import flows
from gateway.exchanges.models import (
    Decision,
    DecisionRead,
    ExchangeRequest,
    ExchangeResult,
    OpenExchangeRequest,
)
from gateway.negotiation.models import Contract
from gateway.participants.models import Participant
from gateway.transfers import flows as transfer_flows
from gateway.transfers.models import FORMATS as DATA_FORMATS
from gateway.transfers.views import streaming_reply

router = APIRouter(tags=["exchanges"])
JSON_REPLY = ("application/json", "application/problem+json", "application/*+json")


@router.post(
    "/exchanges",
    response_model=ExchangeResult,
    responses={
        200: {
            "description": "The delivery: JSON (one page), or the whole data streamed in the "
            "data format Accept prefers",
            "content": {media: {} for media in DATA_FORMATS},
        },
        **problem_responses(401, 403, 404, 409, 422, 502, 503),
    },
)
def pull(
    request: Request,
    body: ExchangeRequest,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="retry safely: the same key and body return the stored reply, "
            "delivered and metered once (specs/transfers.md#idempotency)",
        ),
    ] = None,
    claims: dict[str, Any] = Depends(bearer_claims),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> Response:
    """Pull rows under a contract for a purpose; OPA decides, obligations apply, evidence first.

    With `Accept` naming a data format (JSON Lines, CSV, Arrow IPC, Parquet) before JSON, an api
    or file delivery streams the whole data in that format instead of a page: it runs as a pull
    transfer (`X-Transfer-Id`), whose end records the rows, bytes and SHA-256 delivered."""
    # The whole request (the participant's load included) runs in this one worker thread, and
    # the reply is rendered once, to bytes, here: no second hop to serialise it. One statement
    # reads the participant, the contract and what it is for; the checks then find them.
    me, preloaded = subject_of(session, claims, body)
    media = preferred_data_format(request.headers.get("accept"), besides=JSON_REPLY)
    if media is not None and body.delivery != "compute":
        if body.cursor is not None or idempotency_key is not None:
            raise unprocessable(
                "a streamed exchange is one whole pull: it takes no cursor and no "
                "Idempotency-Key (for a pull that retries safely, POST /transfers with a key)"
            )
        transfer, chunks, enc = transfer_flows.inline_pull(
            session, gateway, subject=me, request=body, media_type=media
        )
        return streaming_reply(gateway, transfer, chunks, enc)

    return json_pull(session, gateway, subject=me, body=body, key=idempotency_key,
                     preloaded=preloaded)  # fmt: skip


def subject_of(
    session: Session, claims: dict[str, Any], body: ExchangeRequest
) -> tuple[Participant, flows.Preloaded]:
    """Return the token's participant (401 unless active and not revoked) and what one statement
    read for the exchange `body` asks for (its contract and what it is for)."""
    preloaded = flows.preload(session, subject_id=claims["sub"], contract_id=body.contract_id)
    return participant_of(session, claims), preloaded


def json_pull(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    body: ExchangeRequest,
    key: str | None,
    preloaded: flows.Preloaded | None,
) -> Response:
    """Run an exchange whose reply is JSON (one page, a file, a compute answer), retried safely
    under `key`; return its reply, rendered to bytes once (here, in the request's thread)."""

    def work():
        result = flows.exchange(session, gateway, subject=subject, request=body,
                                preloaded=preloaded)  # fmt: skip
        return 200, lambda: result.model_dump(mode="json"), result.exchange_id, result

    def replay(row: idempotency.IdempotencyKey) -> ExchangeResult:
        idempotency.replay_problem(row)
        return ExchangeResult.model_validate(row.response)

    result = idempotency.run(
        session,
        subject_id=subject.id,
        route="POST /exchanges",
        key=key,
        body=(lambda: body.model_dump(mode="json")),
        work=work,
        replay=replay,
    )
    return Response(result.model_dump_json(), media_type="application/json")


@router.post(
    "/open-data/{product_id}/exchanges",
    response_model=ExchangeResult,
    responses=problem_responses(401, 403, 404, 422, 503),
)
def pull_open(
    product_id: ObjectId,
    body: OpenExchangeRequest,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ExchangeResult:
    """Pull open data (L1 public, no personal information) without a contract: OPA decides,
    caps the rows per call and per subject and UTC day; every decision is recorded."""
    return flows.open_exchange(session, gateway, subject=me, product_id=product_id, request=body)


@router.get(
    "/decisions/{decision_id}",
    response_model=DecisionRead,
    responses=problem_responses(401, 404),
)
def get_decision(
    decision_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> DecisionRead:
    """Return a recorded decision (input, result) to the contract's parties and auditors.

    The input describes the contract, so a requester who is not the contract's consumer never
    reads it: for anyone but the parties and auditors the decision does not exist (404)."""
    decision = session.get(Decision, decision_id)
    if decision is None:
        raise not_found("decision", decision_id)
    contract = session.get(Contract, decision.contract_id) if decision.contract_id else None
    parties = {contract.provider_id, contract.consumer_id} if contract is not None else set()
    if contract is None:
        parties.add(decision.subject_id)
    if me.id not in parties and not {"auditor", "admin"} & set(me.roles):
        raise not_found("decision", decision_id)
    return DecisionRead.model_validate(decision, from_attributes=True)
