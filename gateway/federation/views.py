"""Federation routes: the consumer side of DSP (thin: gateway/federation/flows.py does the work).

- our API, for a consumer registered here (problem+json): the federated catalogue of a peer,
  negotiations and transfers through this gateway, the pull;
- the DSP consumer callbacks a peer gateway calls on those processes
  (`/dsp/2025-1/callback/...`, DSP error messages), authenticated by the peer's signed token.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session

from gateway.auth.views import _bearer, current_participant
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import Problem, problem_responses
from gateway.core.types import ObjectId
from gateway.dsp import service as dsp
from gateway.dsp.models import PATH, message
from gateway.dsp.views import _json, _route_class, dsp_message
from gateway.federation import flows, service
from gateway.federation.models import (
    CounterOffer,
    FederatedCatalogue,
    FederatedProcess,
    Initiate,
    NegotiationCreate,
    ProcessRead,
    TransferCreate,
    Verification,
)
from gateway.participants.models import Participant
from gateway.peers import service as peers
from gateway.peers.models import PEER_ID_MAX, Peer

router = APIRouter(prefix="/federation", tags=["federation"])
_ERRORS = problem_responses(401, 403, 404, 409, 422, 502, 503)


@router.get("/catalogue", response_model=FederatedCatalogue, responses=_ERRORS)
def federated_catalogue(
    peer: str = Query(..., min_length=1, max_length=PEER_ID_MAX, description="the peer's id"),
    offset: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(50, ge=1, le=200),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> FederatedCatalogue:
    """A peer gateway's DSP catalogue as the caller may see it there (fetched now, over DSP,
    with this gateway's peer token for the caller's account at the peer; recorded)."""
    found, account, catalog, entry = flows.catalogue(
        session, gateway, subject=me, peer_id=peer, offset=offset, limit=limit
    )
    return FederatedCatalogue(
        peer=found.id, participant_id=account, catalog=catalog, ledger_seq=entry.seq
    )


@router.post(
    "/consumer/negotiations", status_code=201, response_model=ProcessRead, responses=_ERRORS
)
def federated_negotiate(
    body: NegotiationCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """Negotiate an offer of a peer's catalogue through this gateway (a DSP
    ContractRequestMessage to the peer; its agreement comes to our callback)."""
    process, entry = flows.negotiate(session, gateway, subject=me, body=body)
    return service.to_read(process, entry)


@router.get("/consumer/negotiations", response_model=list[ProcessRead], responses=_ERRORS)
def federated_processes(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> list[ProcessRead]:
    """The caller's federated negotiations and transfers, newest first."""
    return [service.to_read(p) for p in service.list_processes(session, me)]


@router.get(
    "/consumer/negotiations/{pid}", response_model=ProcessRead, responses=_ERRORS
)  # fmt: skip
def federated_negotiation(
    pid: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ProcessRead:
    """One federated negotiation (once AGREED, with the contract document to sign)."""
    return service.to_read(service.get(session, pid, kind="negotiation", viewer=me))


@router.post("/consumer/negotiations/{pid}/verify", response_model=ProcessRead, responses=_ERRORS)
def federated_verify(
    pid: ObjectId,
    body: Verification,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """Sign the peer's agreement: the JWS is checked here with the caller's keys, then sent to
    the peer as the ContractAgreementVerificationMessage (→ FINALIZED)."""
    process, entry = flows.verify(
        session, gateway, subject=me, consumer_pid=pid, jws=body.signature
    )
    return service.to_read(process, entry)


@router.post(
    "/consumer/negotiations/{pid}/accept", response_model=ProcessRead, responses=_ERRORS
)  # fmt: skip
def federated_accept(
    pid: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """Accept the peer's offer on an OFFERED negotiation (ContractNegotiationEventMessage
    ACCEPTED; the peer's agreement follows)."""
    process, entry = flows.accept(session, gateway, subject=me, consumer_pid=pid)
    return service.to_read(process, entry)


@router.post(
    "/consumer/negotiations/{pid}/counter", response_model=ProcessRead, responses=_ERRORS
)  # fmt: skip
def federated_counter(
    pid: ObjectId,
    body: CounterOffer | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """Counter the peer's offer on an OFFERED negotiation: a ContractRequestMessage for
    `offer_id` (by default the offer first requested) goes to the peer (→ REQUESTED; the peer
    offers again, agrees or terminates)."""
    process, entry = flows.counter(
        session, gateway, subject=me, consumer_pid=pid, offer_id=body.offer_id if body else None
    )
    return service.to_read(process, entry)


@router.post(
    "/consumer/negotiations/{pid}/terminate", response_model=ProcessRead, responses=_ERRORS
)  # fmt: skip
def federated_terminate(
    pid: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """End a federated negotiation that is not over (ContractNegotiationTerminationMessage)."""
    process, entry = flows.terminate(session, gateway, subject=me, consumer_pid=pid)
    return service.to_read(process, entry)


@router.post(
    "/initiate/negotiations", status_code=201, response_model=ProcessRead, responses=_ERRORS
)  # fmt: skip
def initiate_negotiation(
    body: Initiate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """A DSP consumer-side trigger (the DSP TCK's `negotiation.initiate.url`): negotiate
    `offerId` (of `datasetId`) for the caller with the registered peer whose DSP URL is
    `connectorAddress`, as POST /federation/consumer/negotiations does."""
    if body.offerId is None:
        raise Problem(422, "validation-error", "Invalid request", "offerId is required")
    process, entry = flows.initiate_negotiation(
        session, gateway, subject=me, address=body.connectorAddress, offer_id=body.offerId,
        dataset_id=body.datasetId,
    )  # fmt: skip
    return service.to_read(process, entry)


@router.post(
    "/initiate/transfers", status_code=201, response_model=ProcessRead, responses=_ERRORS
)  # fmt: skip
def initiate_transfer(
    body: Initiate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """A DSP consumer-side trigger (the DSP TCK's `transfer.initiate.url`): a pull under
    `agreementId`, the agreement of one of the caller's FINALIZED federated negotiations with
    the peer at `connectorAddress` (409 for any other agreement)."""
    if body.agreementId is None:
        raise Problem(422, "validation-error", "Invalid request", "agreementId is required")
    process, entry = flows.initiate_transfer(
        session, gateway, subject=me, address=body.connectorAddress,
        agreement_id=body.agreementId,
    )  # fmt: skip
    return service.to_read(process, entry)


@router.post("/consumer/transfers", status_code=201, response_model=ProcessRead, responses=_ERRORS)
def federated_transfer(
    body: TransferCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """Ask the peer for a pull under a FINALIZED federated agreement (TransferRequestMessage);
    the endpoint and token come in the peer's TransferStartMessage."""
    process, entry = flows.transfer(session, gateway, subject=me, negotiation_pid=body.negotiation)
    return service.to_read(process, entry)


@router.post(
    "/consumer/transfers/{pid}/{move}", response_model=ProcessRead, responses=_ERRORS
)  # fmt: skip
def federated_transfer_move(
    pid: ObjectId,
    move: Literal["suspend", "complete", "terminate"],
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProcessRead:
    """Suspend, complete or terminate one of the caller's federated transfers (the DSP
    TransferSuspensionMessage, TransferCompletionMessage or TransferTerminationMessage)."""
    process, entry = flows.transfer_move(session, gateway, subject=me, consumer_pid=pid, move=move)
    return service.to_read(process, entry)


@router.get("/consumer/transfers/{pid}", response_model=ProcessRead, responses=_ERRORS)
def federated_transfer_get(
    pid: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ProcessRead:
    """One federated transfer (STARTED once the peer's TransferStartMessage came)."""
    return service.to_read(service.get(session, pid, kind="transfer", viewer=me))


@router.get(
    "/consumer/transfers/{pid}/data",
    response_class=Response,
    responses={200: {"description": "the data, as the peer served it"}, **_ERRORS},
)
def federated_pull(
    pid: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> Response:
    """Pull the data of a STARTED federated transfer from the peer (this gateway uses the
    endpoint and token the peer gave it; the bytes' SHA-256 is recorded)."""
    content, media, entry = flows.pull(session, gateway, subject=me, consumer_pid=pid)
    return Response(content, media_type=media, headers={"DSGW-Ledger-Seq": str(entry.seq)})


# -- DSP consumer callbacks (a peer gateway calls them) ---------------------------------------


def dsp_gateway(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> Peer:
    """Return the registered, active peer gateway whose own signed token the callback carries;
    else 401 (a refused peer token is recorded as `dsp.peer-refused`, as on DSP routes)."""
    settings = gateway.settings
    claimed = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        claimed = peers.claimed_issuer(credentials.credentials, settings.issuer)
    if claimed is None:
        raise Problem(
            401,
            "unauthenticated",
            "Authentication required",
            "a DSP callback carries the peer gateway's signed token (Bearer)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        peer = peers.authenticate_gateway(session, settings, credentials.credentials, claimed)
    except peers.Refusal as refusal:
        peers.record_refusal(
            session, gateway.signer, refusal, method=request.method, path=request.url.path
        )
        raise peers.refused(refusal) from None
    session.commit()
    return peer


CallbackPid = Annotated[str, Path(min_length=1, max_length=64)]
CallbackKey = Annotated[str, Path(min_length=1, max_length=200)]


def dsp_peer_key(
    request: Request,
    key: CallbackKey,
    consumer_pid: CallbackPid,
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> Peer:
    """Return the active "dsp" peer (no dsgw gateway) of the process a callback names, when
    the callback address carries that process's key (compared hashed, in constant time); else
    401, recorded as `dsp.peer-refused` (reason `bad-callback-key`)."""
    process = session.get(FederatedProcess, consumer_pid)
    peer = session.get(Peer, process.peer_id) if process is not None else None
    reason, detail = None, ""
    if process is None or peer is None or peer.kind != "dsp":
        reason, detail = "bad-callback-key", "no process of a dsp peer has this callback key"
    elif not peers.callback_key_matches(key, process.callback_key_hash):
        reason, detail = "bad-callback-key", "not the callback key of this process"
    elif peer.status != "active":
        reason, detail = "suspended-peer", f"peer {peer.id} is {peer.status}"
    if reason is not None:
        refusal = peers.Refusal(reason, peer.id if peer is not None else "?", detail)
        peers.record_refusal(
            session, gateway.signer, refusal, method=request.method,
            path=request.url.path.replace(key, "…"),
        )  # fmt: skip
        raise peers.refused(refusal)
    return peer


callbacks = APIRouter(
    prefix=f"{PATH}/callback",
    tags=["dsp"],
    route_class=_route_class("ContractNegotiationError"),
    responses=problem_responses(400, 401, 404, 409),
)
transfer_callbacks = APIRouter(
    prefix=f"{PATH}/callback",
    tags=["dsp"],
    route_class=_route_class("TransferError"),
    responses=problem_responses(400, 401, 404, 409),
)

_NEGOTIATION_CALLBACKS = {
    "offers": "ContractOfferMessage",
    "agreement": "ContractAgreementMessage",
    "events": "ContractNegotiationEventMessage",
    "termination": "ContractNegotiationTerminationMessage",
}
_TRANSFER_CALLBACKS = {
    "start": "TransferStartMessage",
    "completion": "TransferCompletionMessage",
    "suspension": "TransferSuspensionMessage",
    "termination": "TransferTerminationMessage",
}


_KEYED = "/k/{key}"  # a "dsp" peer's callback address carries the process's key


def _negotiation_callback(path: str, kind: str, keyed: bool) -> None:
    peer_dependency = dsp_peer_key if keyed else dsp_gateway

    def route(
        consumer_pid: CallbackPid,
        body: dict[str, Any] = Depends(dsp_message),
        peer: Peer = Depends(peer_dependency),
        session: Session = Depends(get_session),
        gateway: Gateway = Depends(get_gateway),
    ):
        dsp.expect_type(body, kind)
        if kind == "ContractOfferMessage" and peer.kind != "dsp":
            raise dsp.bad_message("a dsgw peer makes no offers beyond its catalogue's")
        flows.negotiation_callback(
            session, gateway, peer=peer, consumer_pid=consumer_pid, kind=kind, body=body
        )
        return _json({}, status=200)

    route.__doc__ = f"The peer's {kind} on one of our federated negotiations" + (
        " (a dsp peer: the callback key authenticates it)." if keyed else "."
    )
    route.__name__ = f"callback_negotiation_{path}" + ("_keyed" if keyed else "")
    callbacks.add_api_route(
        f"{_KEYED if keyed else ''}/negotiations/{{consumer_pid}}/{path}", route,
        methods=["POST"], response_model=dict[str, Any],
    )  # fmt: skip


def _transfer_callback(path: str, kind: str, keyed: bool) -> None:
    peer_dependency = dsp_peer_key if keyed else dsp_gateway

    def route(
        consumer_pid: CallbackPid,
        body: dict[str, Any] = Depends(dsp_message),
        peer: Peer = Depends(peer_dependency),
        session: Session = Depends(get_session),
        gateway: Gateway = Depends(get_gateway),
    ):
        dsp.expect_type(body, kind)
        flows.transfer_callback(
            session, gateway, peer=peer, consumer_pid=consumer_pid, kind=kind, body=body
        )
        return _json({}, status=200)

    route.__doc__ = f"The peer's {kind} on one of our federated transfers" + (
        " (a dsp peer: the callback key authenticates it)." if keyed else "."
    )
    route.__name__ = f"callback_transfer_{path}" + ("_keyed" if keyed else "")
    transfer_callbacks.add_api_route(
        f"{_KEYED if keyed else ''}/transfers/{{consumer_pid}}/{path}", route,
        methods=["POST"], response_model=dict[str, Any],
    )  # fmt: skip


def _state_message(process: FederatedProcess) -> dict[str, Any]:
    type_ = "ContractNegotiation" if process.kind == "negotiation" else "TransferProcess"
    return message(
        type_, providerPid=process.provider_pid, consumerPid=process.consumer_pid,
        state=process.state,
    )  # fmt: skip


@callbacks.get("/k/{key}/negotiations/{consumer_pid}", response_model=dict[str, Any])
def callback_negotiation_state(
    consumer_pid: CallbackPid,
    peer: Peer = Depends(dsp_peer_key),
    session: Session = Depends(get_session),
):
    """A dsp peer reads the state of one of our federated negotiations with it (DSP
    ContractNegotiation; the callback key authenticates it)."""
    process = service.for_peer(session, consumer_pid, kind="negotiation", peer=peer)
    return _json(_state_message(process), status=200)


@transfer_callbacks.get("/k/{key}/transfers/{consumer_pid}", response_model=dict[str, Any])
def callback_transfer_state(
    consumer_pid: CallbackPid,
    peer: Peer = Depends(dsp_peer_key),
    session: Session = Depends(get_session),
):
    """A dsp peer reads the state of one of our federated transfers with it (DSP
    TransferProcess; the callback key authenticates it)."""
    process = service.for_peer(session, consumer_pid, kind="transfer", peer=peer)
    return _json(_state_message(process), status=200)


for _keyed in (False, True):
    for _path, _kind in _NEGOTIATION_CALLBACKS.items():
        if _kind != "ContractOfferMessage" or _keyed:
            _negotiation_callback(_path, _kind, _keyed)
    for _path, _kind in _TRANSFER_CALLBACKS.items():
        _transfer_callback(_path, _kind, _keyed)

routers = (router, callbacks, transfer_callbacks)
