"""Transfer routes: start a pull or a push, read and move transfers, and the data endpoint."""

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from gateway.auth.views import current_participant
from gateway.context import Gateway, get_gateway, get_session
from gateway.core import idempotency
from gateway.core.errors import not_found, problem_responses
from gateway.core.types import Identifier, ObjectId
from gateway.dataplane.encoders import EXTENSIONS
from gateway.participants.models import Participant
from gateway.transfers import flows, service
from gateway.transfers.models import (
    FORMATS,
    Transfer,
    TransferAction,
    TransferList,
    TransferRead,
    TransferRequest,
)

router = APIRouter(tags=["transfers"])
_data_token = HTTPBearer(
    auto_error=False,
    scheme_name="DataToken",
    description="The transfer's data token (POST /transfers of a pull), not an access token",
)
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="retry safely: the same key and body return the first result "
        "(specs/transfers.md#idempotency)",
    ),
]
ROUTE = "POST /transfers"


def _idempotency_body(body: TransferRequest) -> dict[str, Any]:
    """Return what makes two requests the same: the body without the sink's credentials."""
    data = body.model_dump(mode="json")
    if isinstance(data.get("sink"), dict):
        data["sink"] = {k: v for k, v in data["sink"].items() if k != "secret"}
    return data


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferRead,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
def start(
    body: TransferRequest,
    idempotency_key: IdempotencyKeyHeader = None,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> TransferRead:
    """Start a transfer under a contract: OPA decides as for an exchange; a pull's reply carries
    the data endpoint and its token, a push runs to the sink (GET shows it COMPLETED)."""

    def work():
        transfer, token = flows.start(session, gateway, subject=me, request=body)
        return 201, None, transfer.id, service.to_read(session, transfer, data=token)

    def replay(row: idempotency.IdempotencyKey) -> TransferRead:
        idempotency.replay_problem(row)
        transfer = session.get(Transfer, row.object_id)
        if transfer is None:
            raise not_found("transfer", str(row.object_id))
        token = None
        if transfer.type == "pull" and transfer.state == "STARTED" and not transfer.streaming:
            token = flows.tokens.issue(gateway, transfer)
        return service.to_read(session, transfer, data=token)

    return idempotency.run(
        session,
        subject_id=me.id,
        route=ROUTE,
        key=idempotency_key,
        body=_idempotency_body(body),
        work=work,
        replay=replay,
    )


@router.get("/transfers", response_model=TransferList, responses=problem_responses(401, 422))
def list_transfers(
    contract_id: Annotated[Identifier | None, Query(max_length=64)] = None,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> TransferList:
    """Return the transfers the caller may see (its own as a party; all to auditors), newest
    first, of one contract if asked."""
    found = service.of_contract(session, contract_id=contract_id, participant=me)
    return TransferList(items=[service.to_read(session, t) for t in found])


@router.get(
    "/transfers/{transfer_id}",
    response_model=TransferRead,
    responses=problem_responses(401, 404),
)
def get_transfer(
    transfer_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> TransferRead:
    """Return a transfer (with its receipt once completed) to its parties and auditors."""
    return service.to_read(session, service.get_visible(session, transfer_id, me))


def _action(action: str):
    def move(
        transfer_id: ObjectId,
        body: TransferAction | None = Body(None),
        me: Participant = Depends(current_participant),
        session: Session = Depends(get_session),
        gateway: Gateway = Depends(get_gateway),
    ) -> TransferRead:
        transfer, token = flows.act(
            session,
            gateway,
            subject=me,
            transfer_id=transfer_id,
            action=action,
            reason=body.reason if body is not None else "",
        )
        if action == "start":  # the data token is the consumer's: POST …/token gives it
            token = None
        return service.to_read(session, transfer, data=token)

    move.__name__ = f"{action}_transfer"
    move.__doc__ = {
        "start": "The provider starts a REQUESTED transfer (an offer with transfer_start: "
        "provider), decided again by OPA; the consumer then gets its token (POST …/token).",
        "suspend": "Suspend a started transfer (consumer or provider): its data stops.",
        "complete": "Declare a started transfer complete (consumer or provider; not while a "
        "pull is being delivered): the rest of its hold is released.",
        "resume": "Resume a suspended transfer, decided again by OPA (a pull gets a new token).",
        "terminate": "Terminate a transfer (consumer or provider); its unused quota is released.",
    }[action]
    return move


for _name in service.PARTY_ACTIONS:
    router.post(
        f"/transfers/{{transfer_id}}/{_name}",
        response_model=TransferRead,
        responses=problem_responses(401, 403, 404, 409, 422, 503),
    )(_action(_name))


@router.post(
    "/transfers/{transfer_id}/token",
    response_model=TransferRead,
    responses=problem_responses(401, 403, 404, 409),
)
def refresh_token(
    transfer_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> TransferRead:
    """Return a started pull with a fresh data token (its consumer only)."""
    transfer, token = flows.new_token(session, gateway, subject=me, transfer_id=transfer_id)
    return service.to_read(session, transfer, data=token)


SEND_BYTES = 1 << 18  # the most bytes handed to the server at once


async def _body(pull: flows.PullStream):
    """Yield the pull's chunks from a worker thread; closing early records the interruption.

    A large chunk (a batch's message: megabytes) is handed to the server in views of at most
    `SEND_BYTES`, without a copy or another thread hop: the server copies what it is given
    (to bytes, then into the chunked framing), and copies of pieces that stay in the CPU's
    cache and fit the socket's buffer cost less than two of a whole batch's bytes."""
    try:
        while True:
            chunk = await run_in_threadpool(pull.next)
            if chunk is None:
                return
            if len(chunk) <= SEND_BYTES:
                yield chunk
                continue
            view = memoryview(chunk)
            for at in range(0, len(view), SEND_BYTES):
                yield view[at : at + SEND_BYTES]
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(pull.close)


@router.get(
    "/transfers/{transfer_id}/data",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The transfer's data, streamed in its format",
            "content": {media: {} for media in FORMATS},
        },
        **problem_responses(401, 403, 404, 409, 502),
    },
)
def data(
    transfer_id: ObjectId,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_data_token),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> StreamingResponse:
    """Stream a started pull's data (obligations applied) to the bearer of its data token."""
    bearer = credentials is not None and credentials.scheme.lower() == "bearer"
    token = credentials.credentials if bearer and credentials is not None else None
    transfer, chunks, enc = flows.open_pull(session, gateway, transfer_id=transfer_id, token=token)
    return streaming_reply(gateway, transfer, chunks, enc)


def streaming_reply(gateway: Gateway, transfer: Transfer, chunks, enc) -> StreamingResponse:
    """Return the response that streams a pull's bytes; its end (or the client leaving) is
    recorded once, as the transfer's completion or interruption."""
    pull = flows.PullStream(gateway, transfer.id, chunks, enc, generation=transfer.token_generation)
    name = f"{transfer.id}.{EXTENSIONS.get(transfer.format, 'bin')}"
    return StreamingResponse(
        _body(pull),
        media_type=transfer.format,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Transfer-Id": transfer.id,
            "Link": f'</transfers/{transfer.id}>; rel="monitor"',
        },
        # A stream the server never began (the client left at once) is recorded too.
        background=BackgroundTask(pull.close),
    )
