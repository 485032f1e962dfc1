"""The Dataspace Protocol 2025-1 HTTPS bindings, provider side (thin: flows do the work).

Every route takes DSP JSON-LD messages and answers with them; an error is the binding's DSP
error message (`CatalogError`, `ContractNegotiationError`, …) with the RFC 9457 members too.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session

from gateway.auth.service import TokenIssuer
from gateway.auth.views import _bearer, claims_of, current_participant, get_issuer, participant_of
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import PROBLEM_MEDIA_TYPE, Problem, problem_responses
from gateway.core.types import ObjectId
from gateway.dsp import flows, service
from gateway.dsp.models import (
    PATH,
    DspNegotiationList,
    DspNegotiationRead,
    DspTransferList,
    DspTransferRead,
    ProviderOffer,
)
from gateway.federation import service as federation
from gateway.negotiation.models import ContractAction, ContractSignature
from gateway.participants.models import Participant
from gateway.peers import service as peers
from gateway.transfers.models import TransferAction

# A process id or dataset id in a DSP path: ours (contract, transfer, product ids) when it names
# something, bounded whatever a peer sends (an unknown one is DSP's 404, not a 422).
DspId = Annotated[str, Path(min_length=1, max_length=200)]

DSP_MEDIA_TYPE = "application/json"
MAX_LIMIT = 200


def _route_class(error_type: str) -> type[APIRoute]:
    """Return a route class that answers any error with the DSP `error_type` message."""

    class DspRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def dsp_handler(request: Request) -> Response:
                try:
                    return await handler(request)
                except Problem as problem:
                    return _error(request, error_type, problem)
                except RequestValidationError as exc:
                    first = (exc.errors() or [{"msg": "invalid request"}])[0]
                    problem = service.bad_message(str(first.get("msg")))
                    return _error(request, error_type, problem)

            return dsp_handler

    return DspRoute


def _error(request: Request, error_type: str, problem: Problem) -> JSONResponse:
    pids = {}
    if error_type in ("ContractNegotiationError", "TransferError"):
        pids = {
            "providerPid": request.path_params.get("pid", ""),
            "consumerPid": getattr(request.state, "dsp_consumer_pid", ""),
        }
    return JSONResponse(
        service.error_body(error_type, problem, **pids),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,  # a DSP error message that is an RFC 9457 problem too
        headers=problem.headers,
    )


def dsp_peer(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    issuer: TokenIssuer = Depends(get_issuer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> Participant:
    """Return the participant a DSP request comes from, else raise 401 (fail closed).

    Either an access token this gateway issued to a registered, active participant (`Bearer`,
    from POST /oauth/token; the TCK is given one for its participant), or a peer token: a JWS
    a registered, active peer gateway signed for a participant whose home it is
    (gateway/peers). A refused peer token is recorded (`dsp.peer-refused`) before the 401; if
    the ledger cannot record it, the request is refused with 503."""
    settings = gateway.settings
    claimed = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        claimed = peers.claimed_issuer(credentials.credentials, settings.issuer)
    if claimed is None:
        participant = participant_of(session, claims_of(credentials, issuer))
    else:
        try:
            participant = peers.authenticate(session, settings, credentials.credentials, claimed)
        except peers.Refusal as refusal:
            peers.record_refusal(
                session,
                gateway.signer,
                refusal,
                method=request.method,
                path=request.url.path,
            )
            raise peers.refused(refusal) from None
        request.state.dsp_peer = claimed  # a peer gateway's step: cross-referenced evidence
    session.commit()  # no transaction held across the hop to the route's thread
    return participant


async def dsp_message(request: Request) -> dict[str, Any]:
    """Return the request's JSON object body, else raise 400. Async and apart from the route:
    the route's database work then runs in its own thread, never on the event loop (on SQLite
    a transaction holds the write lock, and a loop blocked on it would stall every request)."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise service.bad_message(f"the body is not well-formed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise service.bad_message("a DSP message is a JSON object")
    pid = body.get("consumerPid")
    if isinstance(pid, str):
        request.state.dsp_consumer_pid = pid[:200]  # echoed in an error message: bounded
    return body


def _peer_step(
    request: Request,
    session: Session,
    gateway: Gateway,
    me: Participant,
    message: dict[str, Any],
    reply: dict[str, Any],
    *,
    step: str,
) -> dict[str, Any] | None:
    """When a peer gateway took this step, record it (`dsp.peer-step`, naming the peer's
    evidence the message carried) and put our own evidence in `reply`; return it."""
    peer_id = getattr(request.state, "dsp_peer", None)
    if peer_id is None:
        return None
    evidence = federation.record_peer_step(
        session,
        gateway,
        peer_id=peer_id,
        participant_id=me.id,
        step=step,
        provider_pid=str(reply.get("providerPid")),
        consumer_pid=str(reply.get("consumerPid")),
        state=str(reply.get("state")),
        peer_evidence=federation.read_evidence(message.get(federation.EVIDENCE)),
    )
    reply[federation.EVIDENCE] = {"@value": evidence, "@type": "@json"}
    return evidence


def _json(body: dict[str, Any], status: int = 200, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=DSP_MEDIA_TYPE, headers=headers)


def _base(gateway: Gateway) -> str:
    return gateway.settings.issuer.rstrip("/")


metadata = APIRouter(tags=["dsp"], route_class=_route_class("VersionsError"))


@metadata.get("/.well-known/dspace-version", response_model=dict[str, Any])
def dspace_version() -> JSONResponse:
    """Return the Dataspace Protocol versions this gateway speaks (DSP 2025-1, HTTPS binding)."""
    return _json(service.versions())


# DSP errors: the binding's error message, an RFC 9457 problem too (specs/dsp.md).
_DSP_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)
catalog = APIRouter(
    prefix=PATH, tags=["dsp"], route_class=_route_class("CatalogError"), responses=_DSP_ERRORS
)


@catalog.post("/catalog/request", response_model=dict[str, Any])
def catalog_request(
    message: dict[str, Any] = Depends(dsp_message),
    offset: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """A CatalogRequestMessage: the listed datasets this participant may request, one page
    (`offset`, `limit`; `Link` headers name the next and previous pages). `filter` is ignored."""
    service.expect_type(message, "CatalogRequestMessage")
    total, pairs = flows.catalog_page(session, me, offset=offset, limit=limit)
    base = _base(gateway)
    links = []
    url = f"{base}{PATH}/catalog/request"
    if offset + len(pairs) < total:
        links.append(f'<{url}?offset={offset + len(pairs)}&limit={limit}>; rel="next"')
    if offset > 0:
        links.append(f'<{url}?offset={max(0, offset - limit)}&limit={limit}>; rel="previous"')
    headers = {"Link": ", ".join(links)} if links else None
    return _json(service.catalog(base, gateway.settings.issuer, pairs), headers=headers)


@catalog.get("/catalog/datasets/{dataset_id}", response_model=dict[str, Any])
def catalog_dataset(
    dataset_id: DspId,
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """One dataset (a listed product and the offers this participant may request), else a
    404 CatalogError."""
    product, offers = flows.dataset(session, me, dataset_id)
    return _json(service.dataset_message(_base(gateway), product, offers))


negotiations = APIRouter(
    prefix=f"{PATH}/negotiations",
    tags=["dsp"],
    route_class=_route_class("ContractNegotiationError"),
    responses=_DSP_ERRORS,
)


@negotiations.post("/request", status_code=201, response_model=dict[str, Any])
def negotiation_request(
    request: Request,
    message: dict[str, Any] = Depends(dsp_message),
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """A ContractRequestMessage on a catalogue offer: our contract request (REQUESTED)."""
    body = service.expect_type(message, "ContractRequestMessage")
    contract, link = flows.request(session, gateway, consumer=me, body=body)
    reply = service.negotiation(contract, link.consumer_pid)
    _peer_step(request, session, gateway, me, body, reply, step="negotiate")
    return _json(reply, status=201)


@negotiations.get("/{pid}", response_model=dict[str, Any])
def negotiation_get(
    pid: DspId,
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """The negotiation's state (a party's or an auditor's view), else 404."""
    contract, link = flows.get(session, gateway, provider_pid=pid, viewer=me)
    return _json(service.negotiation(contract, link.consumer_pid))


@negotiations.post("/{pid}/request", response_model=dict[str, Any])
def negotiation_counter_request(
    pid: DspId,
    message: dict[str, Any] = Depends(dsp_message),
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """A counter-offer (ContractRequestMessage on an OFFERED negotiation): OFFERED →
    REQUESTED, the provider answers it (offers again, agrees or terminates); 400 otherwise."""
    body = service.expect_type(message, "ContractRequestMessage")
    contract, link = flows.counter_request(session, gateway, provider_pid=pid, party=me, body=body)
    return _json(service.negotiation(contract, link.consumer_pid))


@negotiations.post("/{pid}/events", response_model=dict[str, Any])
def negotiation_event(
    pid: DspId,
    message: dict[str, Any] = Depends(dsp_message),
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """A ContractNegotiationEventMessage: ACCEPTED takes the provider's offer (OFFERED →
    ACCEPTED); any other event is refused (400)."""
    body = service.expect_type(message, "ContractNegotiationEventMessage")
    contract, link = flows.event(session, gateway, provider_pid=pid, party=me, body=body)
    return _json(service.negotiation(contract, link.consumer_pid))


@negotiations.post("/{pid}/agreement/verification", response_model=dict[str, Any])
def negotiation_verification(
    request: Request,
    pid: DspId,
    message: dict[str, Any] = Depends(dsp_message),
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """A ContractAgreementVerificationMessage: the consumer's JWS verifies the contract
    (AGREED → VERIFIED → FINALIZED), or, from a DSP connector's consumer, the authenticated
    message itself (specs/dsp.md); the FINALIZED event then goes to the consumer's callback."""
    body = service.expect_type(message, "ContractAgreementVerificationMessage")
    peer_token = getattr(request.state, "dsp_peer", None) is not None
    contract, link = flows.verify(
        session, gateway, provider_pid=pid, party=me, body=body, peer_token=peer_token
    )
    reply = service.negotiation(contract, link.consumer_pid)
    _peer_step(request, session, gateway, me, body, reply, step="verify")
    if not peer_token and contract.state == "FINALIZED":
        event = service.event_message(contract, link.consumer_pid, "FINALIZED")
        path = f"/negotiations/{link.consumer_pid}/events"
        flows.notify(link.callback_address, path, event)
    return _json(reply)


@negotiations.post("/{pid}/termination", response_model=dict[str, Any])
def negotiation_termination(
    pid: DspId,
    message: dict[str, Any] = Depends(dsp_message),
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """A ContractNegotiationTerminationMessage: the contract is TERMINATED (before FINALIZED)."""
    body = service.expect_type(message, "ContractNegotiationTerminationMessage")
    contract, link = flows.terminate(session, gateway, provider_pid=pid, party=me, body=body)
    return _json(service.negotiation(contract, link.consumer_pid))


_TRANSFER_ROUTE = _route_class("TransferError")
transfers = APIRouter(
    prefix=f"{PATH}/transfers", tags=["dsp"], route_class=_TRANSFER_ROUTE, responses=_DSP_ERRORS
)


@transfers.post("/request", status_code=201, response_model=dict[str, Any])
def transfer_request(
    request: Request,
    message: dict[str, Any] = Depends(dsp_message),
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """A TransferRequestMessage under a FINALIZED agreement: our transfer, decided by OPA; once
    STARTED, the TransferStartMessage with the pull's endpoint and token goes to the callback."""
    body = service.expect_type(message, "TransferRequestMessage")
    transfer, link, data = flows.transfer_request(session, gateway, consumer=me, body=body)
    reply = service.transfer_process(transfer, link.consumer_pid)
    evidence = _peer_step(request, session, gateway, me, body, reply, step="transfer")
    if transfer.state == "STARTED":
        start = service.start_message(transfer, link.consumer_pid, data)
        if evidence is not None:
            start[federation.EVIDENCE] = reply[federation.EVIDENCE]
        path = f"/transfers/{link.consumer_pid}/start"
        token = flows.callback_token(session, gateway, me.id)
        flows.notify(link.callback_address, path, start, token=token)
    return _json(reply, status=201)


@transfers.get("/{pid}", response_model=dict[str, Any])
def transfer_get(
    pid: DspId,
    me: Participant = Depends(dsp_peer),
    session: Session = Depends(get_session),
) -> JSONResponse:
    """The transfer process's state (a party's or an auditor's view), else 404."""
    transfer, link = flows.get_transfer(session, provider_pid=pid, viewer=me)
    return _json(service.transfer_process(transfer, link.consumer_pid))


def _transfer_route(path: str, kind: str, doc: str) -> None:
    def route(
        pid: DspId,
        message: dict[str, Any] = Depends(dsp_message),
        me: Participant = Depends(dsp_peer),
        session: Session = Depends(get_session),
        gateway: Gateway = Depends(get_gateway),
    ) -> JSONResponse:
        body = service.expect_type(message, kind)
        transfer, link, data = flows.transfer_message(
            session, gateway, provider_pid=pid, party=me, body=body, kind=kind
        )
        if data is not None:  # a resumed pull: its new endpoint token, as at the start
            start = service.start_message(transfer, link.consumer_pid, data)
            path = f"/transfers/{link.consumer_pid}/start"
            token = flows.callback_token(session, gateway, me.id)
            flows.notify(link.callback_address, path, start, token=token)
        return _json(service.transfer_process(transfer, link.consumer_pid))

    route.__doc__ = doc
    route.__name__ = f"transfer_{path}"
    transfers.add_api_route(
        f"/{{pid}}/{path}", route, methods=["POST"], response_model=dict[str, Any]
    )


_RESTART = "A consumer restarts a SUSPENDED transfer (decided by OPA again; the new token follows "
_transfer_route("start", "TransferStartMessage", _RESTART + "in a TransferStartMessage).")
_transfer_route("suspension", "TransferSuspensionMessage", "A consumer suspends a transfer.")
_transfer_route("termination", "TransferTerminationMessage", "A consumer terminates a transfer.")
_transfer_route("completion", "TransferCompletionMessage", "A consumer completes a STARTED "
                "transfer (refused in any other state).")  # fmt: skip

# -- our own API: the provider's side of DSP processes (problem+json, as every dsgw route) ----

provider = APIRouter(prefix="/federation", tags=["federation"])
_ERRORS = problem_responses(401, 403, 404, 409, 422)
_STATE = Query(None, pattern=r"^[A-Z]{1,20}$", description="only processes in this state")


@provider.get("/negotiations", response_model=DspNegotiationList, responses=_ERRORS)
def provider_negotiations(
    state: str | None = _STATE,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> DspNegotiationList:
    """The DSP negotiations on the caller's offers (a merchant's inbox), newest first."""
    return DspNegotiationList(
        items=[
            DspNegotiationRead(
                provider_pid=c.id,
                consumer_pid=n.consumer_pid,
                state=c.state,
                offer_id=c.offer_id,
                product_id=c.product_id,
                consumer_id=c.consumer_id,
                purpose=c.purpose,
                document=c.document,
                callback_address=n.callback_address,
            )
            for c, n in flows.provider_negotiations(session, me, state=state)
        ]
    )


@provider.post("/negotiations/{pid}/agree", response_model=DspNegotiationRead, responses=_ERRORS)
def provider_agree(
    pid: ObjectId,
    body: ContractSignature,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> DspNegotiationRead:
    """The merchant signs the contract of a DSP negotiation (REQUESTED → AGREED, as POST
    /contracts/{id}/agree); the ContractAgreementMessage goes to the consumer's callback."""
    contract, link, agreement = flows.provider_agree(
        session, gateway, provider_pid=pid, provider=me, jws=body.signature
    )
    home = peers.home_of(session, contract.consumer_id)
    if home is not None:  # a peer gateway's consumer: the agreement carries our evidence
        evidence = federation.record_peer_step(
            session,
            gateway,
            peer_id=home.id,
            participant_id=contract.consumer_id,
            step="agreement",
            provider_pid=contract.id,
            consumer_pid=link.consumer_pid,
            state=contract.state,
            peer_evidence=None,
        )
        agreement[federation.EVIDENCE] = {"@value": evidence, "@type": "@json"}
    path = f"/negotiations/{link.consumer_pid}/agreement"
    flows.notify(
        link.callback_address, path, agreement,
        token=flows.callback_token(session, gateway, contract.consumer_id),
    )  # fmt: skip
    return _negotiation_read(contract, link)


@provider.post("/negotiations/{pid}/offer", response_model=DspNegotiationRead, responses=_ERRORS)
def provider_offer(
    pid: ObjectId,
    body: ProviderOffer | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> DspNegotiationRead:
    """The merchant answers a DSP request with an offer (REQUESTED → OFFERED): one of the
    product's offers (`offer_id`; by default the one requested), so it passed drafting's checks;
    the ContractOfferMessage goes to the consumer's callback, which accepts, counters or ends."""
    contract, link, message = flows.provider_offer(
        session, gateway, provider_pid=pid, provider=me, offer_id=body.offer_id if body else None
    )
    path = f"/negotiations/{link.consumer_pid}/offers"
    token = flows.callback_token(session, gateway, contract.consumer_id)
    flows.notify(link.callback_address, path, message, token=token)
    return _negotiation_read(contract, link)


@provider.post(
    "/negotiations/{pid}/terminate", response_model=DspNegotiationRead, responses=_ERRORS
)
def provider_terminate(
    pid: ObjectId,
    body: ContractAction | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> DspNegotiationRead:
    """The merchant ends a DSP negotiation before FINALIZED; the
    ContractNegotiationTerminationMessage goes to the consumer's callback."""
    contract, link, message = flows.provider_terminate(
        session, gateway, provider_pid=pid, provider=me, reason=body.reason if body else ""
    )
    path = f"/negotiations/{link.consumer_pid}/termination"
    token = flows.callback_token(session, gateway, contract.consumer_id)
    flows.notify(link.callback_address, path, message, token=token)
    return _negotiation_read(contract, link)


def _negotiation_read(contract, link) -> DspNegotiationRead:
    return DspNegotiationRead(
        provider_pid=contract.id,
        consumer_pid=link.consumer_pid,
        state=contract.state,
        offer_id=contract.offer_id,
        product_id=contract.product_id,
        consumer_id=contract.consumer_id,
        purpose=contract.purpose,
        document=contract.document,
        callback_address=link.callback_address,
    )


def _transfer_read(transfer, link) -> DspTransferRead:
    return DspTransferRead(
        provider_pid=transfer.id,
        consumer_pid=link.consumer_pid,
        state=transfer.state,
        contract_id=transfer.contract_id,
        product_id=transfer.product_id,
        consumer_id=transfer.consumer_id,
        callback_address=link.callback_address,
    )


@provider.get("/transfers", response_model=DspTransferList, responses=_ERRORS)
def provider_transfers(
    state: str | None = _STATE,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> DspTransferList:
    """The DSP transfers of the caller's products, newest first."""
    return DspTransferList(
        items=[_transfer_read(t, d) for t, d in flows.provider_transfers(session, me, state=state)]
    )


@provider.post("/transfers/{pid}/{action}", response_model=DspTransferRead, responses=_ERRORS)
def provider_transfer_action(
    pid: ObjectId,
    action: Literal["start", "suspend", "complete", "terminate"],
    body: TransferAction | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> DspTransferRead:
    """The merchant moves a DSP transfer: `start` (a REQUESTED transfer of an offer with
    `transfer_start: provider`, or a SUSPENDED one again; decided by OPA, a revoked contract
    does not start), `suspend`, `complete` or `terminate`; the TransferStartMessage (with the
    pull's endpoint and token), TransferSuspensionMessage, TransferCompletionMessage or
    TransferTerminationMessage goes to the consumer's callback."""
    transfer, link, path, message = flows.provider_transfer_action(
        session,
        gateway,
        provider_pid=pid,
        provider=me,
        action=action,
        reason=body.reason if body else "",
    )
    token = flows.callback_token(session, gateway, transfer.consumer_id)
    flows.notify(link.callback_address, path, message, token=token)
    return _transfer_read(transfer, link)


routers = (metadata, catalog, negotiations, transfers, provider)
