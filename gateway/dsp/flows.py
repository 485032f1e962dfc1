"""DSP steps told as our own: each calls the service our own API calls for the same step.

Nothing a DSP peer sends reaches a product, contract or transfer except through the function
our API uses for that move (`negotiation.request`, `negotiation.act`, …), so the same checks,
policy decisions and ledger entries apply; this module only translates identifiers and states.
"""

import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import ContractState
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem, conflict, not_found
from gateway.core.hashing import content_hash
from gateway.dataplane import egress
from gateway.dsp import service
from gateway.dsp.models import DspNegotiation, DspTransfer
from gateway.evidence.service import commit
from gateway.negotiation import service as negotiation
from gateway.negotiation.models import Contract, ContractRequest
from gateway.participants.models import Participant
from gateway.peers import service as peers
from gateway.products import catalogue
from gateway.products import service as products
from gateway.products.models import Product, ProductOffer
from gateway.transfers import flows as transfers
from gateway.transfers import service as transfer_service
from gateway.transfers.models import DataToken, Transfer, TransferRequest

log = structlog.get_logger("gateway.dsp")

# DSP ends a negotiation at FINALIZED: terminating it afterwards is our contract API's business.
_TERMINABLE = (
    ContractState.REQUESTED,
    ContractState.OFFERED,
    ContractState.ACCEPTED,
    ContractState.AGREED,
    ContractState.VERIFIED,
)


def catalog_page(
    session: Session, consumer: Participant, *, offset: int, limit: int
) -> tuple[int, list[tuple[Product, list[ProductOffer]]]]:
    """Return (total, the page of listed products the consumer may request, with offers)."""
    total, page, offers = catalogue.search(
        session, catalogue.Query(offset=offset, limit=limit), consumer
    )
    return total, [(p, offers[p.id]) for p in page]


def dataset(
    session: Session, consumer: Participant, dataset_id: str
) -> tuple[Product, list[ProductOffer]]:
    """Return a listed product the consumer may see, with the offers it may request; else 404
    (as if it did not exist, like the catalogue)."""
    found = session.get(Product, dataset_id)
    if found is None or not catalogue.may_see(found, consumer):
        raise not_found("dataset", dataset_id)
    offers = [
        o
        for o in products.offers_of(session, found.id)
        if catalogue.may_request(o.region, consumer)
    ]
    if not offers:
        raise not_found("dataset", dataset_id)
    return found, offers


def request(
    session: Session, gateway: Gateway, *, consumer: Participant, body: dict[str, Any]
) -> tuple[Contract, DspNegotiation]:
    """A ContractRequestMessage opens a negotiation: our contract request and, in the same
    transaction, the peer's process id and callback address beside it."""
    consumer_pid = service.text(body, "consumerPid")
    if consumer_pid is None or len(consumer_pid) > 200:
        raise service.bad_message("consumerPid: a process id of at most 200 characters is needed")
    if service.text(body, "providerPid") is not None:
        raise service.bad_message(
            "a ContractRequestMessage on an existing negotiation is a counter-offer: dsgw "
            "providers take their catalogue offers as they are (request one of them anew)"
        )
    policy = body.get("offer")
    offer_id = policy.get("@id") if isinstance(policy, dict) else None
    if not isinstance(offer_id, str) or not offer_id:
        raise service.bad_message("offer: an ODRL Offer with the @id of a catalogue offer")
    target = policy.get("target")
    if isinstance(target, dict):
        target = target.get("@id")
    callback = _callback(gateway, body)
    try:
        stored, offer = products.get_offer(session, offer_id)
    except Problem:
        raise service.bad_message(
            f"offer {offer_id!r} is not in this gateway's catalogue"
        ) from None
    if target is not None and target != stored.product_id:
        raise service.bad_message(
            f"offer {offer_id} is an offer of dataset {stored.product_id}, not of {target!r}"
        )
    purpose = service.requested_purpose(body, offer)
    try:
        wanted = ContractRequest(offer_id=offer_id, purpose=purpose)
    except ValueError as exc:
        raise service.bad_message(f"offer or purpose not acceptable: {exc}") from None
    links: list[DspNegotiation] = []

    def _link(contract: Contract) -> None:
        links.append(
            DspNegotiation(
                contract_id=contract.id,
                consumer_pid=consumer_pid,
                callback_address=callback,
                created_at=clock.now(),
            )
        )
        session.add(links[0])

    # The contract, its ledger entry and its DSP link commit in one transaction: a contract
    # DSP cannot reach never remains.
    contract, _entry = negotiation.request(
        session, gateway, body=wanted, consumer=consumer, along=_link
    )
    return contract, links[0]


def _negotiation(
    session: Session, gateway: Gateway, provider_pid: str, viewer: Participant
) -> tuple[Contract, DspNegotiation]:
    """Return the contract a DSP negotiation is and its DSP link, else 404."""
    link = session.get(DspNegotiation, provider_pid)
    if link is None:
        raise not_found("negotiation", provider_pid)
    negotiation.get(session, provider_pid, viewer=viewer)
    return negotiation.current(session, gateway, provider_pid), link


def get(
    session: Session, gateway: Gateway, *, provider_pid: str, viewer: Participant
) -> tuple[Contract, DspNegotiation]:
    """Return a negotiation to its parties (and auditors); 404 for anyone else."""
    return _negotiation(session, gateway, provider_pid, viewer)


def _same_process(link: DspNegotiation, body: dict[str, Any]) -> None:
    consumer_pid = service.text(body, "consumerPid")
    if consumer_pid is not None and consumer_pid != link.consumer_pid:
        raise service.bad_message(
            f"consumerPid {consumer_pid!r} is not the process id of this negotiation"
        )


def terminate(
    session: Session,
    gateway: Gateway,
    *,
    provider_pid: str,
    party: Participant,
    body: dict[str, Any],
) -> tuple[Contract, DspNegotiation]:
    """A ContractNegotiationTerminationMessage: our contract is terminated by that party."""
    contract, link = _negotiation(session, gateway, provider_pid, party)
    _same_process(link, body)
    if ContractState(contract.state) not in _TERMINABLE:
        raise service.bad_message(
            f"negotiation {contract.id} is {service.dsp_state(contract)}: a DSP negotiation ends "
            "at FINALIZED or TERMINATED (a running contract is ended through the contract API, "
            "POST /contracts/{id}/terminate, as its offer allows)"
        )
    reasons = body.get("reason")
    reason = "; ".join(str(r)[:500] for r in reasons) if isinstance(reasons, list) else ""
    contract, _entry = negotiation.act(
        session,
        gateway,
        contract_id=contract.id,
        action="terminate",
        actor=party,
        reason=("DSP termination" + (f": {reason}" if reason else ""))[:2000],
    )
    return contract, link


def event(
    session: Session,
    gateway: Gateway,
    *,
    provider_pid: str,
    party: Participant,
    body: dict[str, Any],
) -> tuple[Contract, DspNegotiation]:
    """A ContractNegotiationEventMessage from the consumer: ACCEPTED takes the offer the
    provider made (OFFERED → ACCEPTED, negotiation.accept); any other event, or ACCEPTED on a
    negotiation that is not OFFERED, is refused with 400."""
    contract, link = _negotiation(session, gateway, provider_pid, party)
    _same_process(link, body)
    kind = service.text(body, "eventType")
    accepted = kind is not None and kind.rsplit("/", 1)[-1].removeprefix("dspace:") == "ACCEPTED"
    if not accepted or ContractState(contract.state) != ContractState.OFFERED:
        raise service.bad_message(
            f"event {kind!r} does not apply: negotiation {contract.id} is "
            f"{service.dsp_state(contract)}; a consumer sends ACCEPTED on an OFFERED negotiation"
        )
    if party.id != contract.consumer_id:
        raise not_found("negotiation", provider_pid)
    contract, _entry = negotiation.accept(session, gateway, contract_id=contract.id, consumer=party)
    return contract, link


def counter_request(
    session: Session,
    gateway: Gateway,
    *,
    provider_pid: str,
    party: Participant,
    body: dict[str, Any],
) -> tuple[Contract, DspNegotiation]:
    """A ContractRequestMessage on an OFFERED negotiation: the consumer's counter-offer
    (OFFERED → REQUESTED, negotiation.counter); refused with 400 in any other state."""
    contract, link = _negotiation(session, gateway, provider_pid, party)
    _same_process(link, body)
    if party.id != contract.consumer_id:
        raise not_found("negotiation", provider_pid)
    if ContractState(contract.state) != ContractState.OFFERED:
        raise service.bad_message(
            f"negotiation {contract.id} is {service.dsp_state(contract)}: a consumer counters "
            "an offer of the provider (OFFERED) only; wait for the provider's answer"
        )
    policy = body.get("offer")
    offer_id = policy.get("@id") if isinstance(policy, dict) else None
    if not isinstance(offer_id, str) or not offer_id or len(offer_id) > 200:
        raise service.bad_message("offer: an ODRL Offer with an @id of at most 200 characters")
    try:
        contract, _entry = negotiation.counter(
            session,
            gateway,
            contract_id=contract.id,
            consumer=party,
            offer_id=offer_id,
            offer_hash=content_hash(policy),
        )
    except Problem as problem:
        if problem.status == 422:
            raise service.bad_message(problem.detail) from None
        raise
    return contract, link


def verify(
    session: Session,
    gateway: Gateway,
    *,
    provider_pid: str,
    party: Participant,
    body: dict[str, Any],
    peer_token: bool = False,
) -> tuple[Contract, DspNegotiation]:
    """A ContractAgreementVerificationMessage: the consumer's signature over the agreement
    (member `https://dsgw.dev/ns/dcat#signature`, a compact JWS) verifies our contract.

    Without a signature, only a consumer that is a DSP connector (its home an active `kind:
    dsp` peer, the message authenticated by this gateway's access token, not a peer token)
    verifies by the message itself: its digest is recorded and stands for the signature
    (negotiation.verify_by_channel). Anyone else is refused with 400, as before."""
    contract, link = _negotiation(session, gateway, provider_pid, party)
    _same_process(link, body)
    if ContractState(contract.state) != ContractState.AGREED:
        raise service.bad_message(
            f"negotiation {contract.id} is {service.dsp_state(contract)}: only an AGREED "
            "negotiation is verified"
        )
    jws = body.get(service.DSGW_TERMS + "signature")
    if jws is None and not peer_token:
        connector = peers.connector_home_of(session, party.id)
        if connector is not None and party.id == contract.consumer_id:
            contract, _entry = negotiation.verify_by_channel(
                session,
                gateway,
                contract_id=contract.id,
                consumer=party,
                peer_id=connector.id,
                message_hash=content_hash(body),
            )
            return contract, link
    if not isinstance(jws, str) or not jws:
        raise service.bad_message(
            "a dsgw agreement is a signed contract: the verification carries the consumer's "
            f"compact JWS over the agreement's contract document ({service.DSGW_TERMS}signature)"
        )
    contract, _entry = negotiation.verify(
        session, gateway, contract_id=contract.id, consumer=party, jws=jws
    )
    return contract, link


def _callback(gateway: Gateway, body: dict[str, Any]) -> str | None:
    """Return the message's callbackAddress once the gateway may call it, else raise 400: an
    http(s) URL that is not one of the gateway's own services, nor an internal address its
    operator did not allow (the push rules of gateway/dataplane/egress.py)."""
    callback = service.text(body, "callbackAddress")
    if callback is None:
        return None
    if len(callback) > 2000 or not callback.startswith(("http://", "https://")):
        raise service.bad_message("callbackAddress: an http(s) URL of at most 2000 characters")
    settings = gateway.settings
    try:
        egress.check_sink(
            callback,
            allowed=egress.parse_networks(settings.sink_allowed_networks),
            own=egress.own_services(
                [settings.opa_url, settings.issuer, settings.resolved_database_url]
            ),
        )
    except Problem as problem:
        raise service.bad_message(f"callbackAddress: {problem.detail}") from None
    return callback.rstrip("/")


def transfer_request(
    session: Session, gateway: Gateway, *, consumer: Participant, body: dict[str, Any]
) -> tuple[Transfer, DspTransfer, DataToken | None]:
    """A TransferRequestMessage under an agreement (one of our contracts): our transfer start,
    decided by OPA as POST /transfers is, then the peer's process id beside it."""
    consumer_pid = service.text(body, "consumerPid")
    if consumer_pid is None or len(consumer_pid) > 200:
        raise service.bad_message("consumerPid: a process id of at most 200 characters is needed")
    agreement_id = service.text(body, "agreementId")
    if agreement_id is None or len(agreement_id) > 40:
        raise service.bad_message("agreementId: the id of a FINALIZED agreement is needed")
    fmt = service.pull_format(service.text(body, "format"))
    callback = _callback(gateway, body)
    contract = negotiation.get(session, agreement_id, viewer=consumer)
    try:
        wanted = TransferRequest(contract_id=contract.id, purpose=contract.purpose, format=fmt)
    except ValueError as exc:
        raise service.bad_message(f"transfer not acceptable: {exc}") from None
    transfer, data = transfers.start(session, gateway, subject=consumer, request=wanted)
    link = DspTransfer(
        transfer_id=transfer.id,
        consumer_pid=consumer_pid,
        callback_address=callback,
        created_at=clock.now(),
    )
    session.add(link)
    commit(session)
    return transfer, link, data


def _transfer(
    session: Session, provider_pid: str, viewer: Participant
) -> tuple[Transfer, DspTransfer]:
    link = session.get(DspTransfer, provider_pid)
    if link is None:
        raise not_found("transfer", provider_pid)
    return transfer_service.get_visible(session, provider_pid, viewer), link


def get_transfer(
    session: Session, *, provider_pid: str, viewer: Participant
) -> tuple[Transfer, DspTransfer]:
    """Return a DSP transfer process to its parties (and auditors); 404 for anyone else."""
    return _transfer(session, provider_pid, viewer)


# DSP messages a consumer sends on a transfer, and our transfer actions they are.
TRANSFER_ACTIONS = {
    "TransferTerminationMessage": "terminate",
    "TransferSuspensionMessage": "suspend",
    "TransferStartMessage": "resume",
    "TransferCompletionMessage": "complete",
}


def transfer_message(
    session: Session,
    gateway: Gateway,
    *,
    provider_pid: str,
    party: Participant,
    body: dict[str, Any],
    kind: str,
) -> tuple[Transfer, DspTransfer, DataToken | None]:
    """A consumer's termination, suspension, (re)start or completion of a transfer: our
    transfer action (a resume is decided by OPA again, and returns the pull's new token; a
    completion is taken on a STARTED transfer only), recorded as our API records it."""
    transfer, link = _transfer(session, provider_pid, party)
    consumer_pid = service.text(body, "consumerPid")
    if consumer_pid is not None and consumer_pid != link.consumer_pid:
        raise service.bad_message(
            f"consumerPid {consumer_pid!r} is not the process id of this transfer"
        )
    reasons = body.get("reason")
    reason = "; ".join(str(r)[:100] for r in reasons) if isinstance(reasons, list) else ""
    transfer, data = transfers.act(
        session,
        gateway,
        subject=party,
        transfer_id=transfer.id,
        action=TRANSFER_ACTIONS[kind],
        reason=("DSP" + (f": {reason}" if reason else ""))[:200],
    )
    return transfer, link, data


# Senders apart from any request (a slow peer holds no request's thread, session or lock); the
# messages of one peer process always take the same sender, so they leave in the order they
# were made (a start before the termination that follows it), and a slow process delays only
# the processes that share its sender.
_SENDERS = [
    ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"dsp-callbacks-{i}") for i in range(4)
]


def notify(
    address: str | None, path: str, body: dict[str, Any], *, token: str | None = None
) -> None:
    """Queue a DSP message for the peer's callback `address` + `path` (sent once the caller's
    transaction is committed; the caller commits before calling), with `token` as its bearer
    token when the consumer's home is a peer gateway (`callback_token`)."""
    if address is not None:
        process = f"{address} {body.get('consumerPid')}".encode()
        _SENDERS[zlib.crc32(process) % len(_SENDERS)].submit(_send, address, path, body, token)


def callback_token(session: Session, gateway: Gateway, consumer_id: str) -> str | None:
    """Return our own peer token for a callback to the consumer's home gateway, when the
    consumer's home is a registered peer (it authenticates the callback); else None."""
    home = peers.home_of(session, consumer_id)
    if home is None:
        return None
    return peers.sign_token(
        gateway.signer,
        issuer=gateway.settings.issuer,
        audience=home.id,
        participant_id=None,
        lifetime=peers.MAX_TOKEN_SECONDS,
    )


def _send(address: str, path: str, body: dict[str, Any], token: str | None = None) -> None:
    """POST one DSP message; log, never raise (the peer asks again with GET when it missed one)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        answered = httpx.post(f"{address}{path}", json=body, headers=headers, timeout=5)
        if answered.status_code >= 300:
            log.warning("dsp callback refused", path=path, status=answered.status_code)
    except httpx.HTTPError as exc:
        log.warning("dsp callback failed", path=path, error=str(exc))


# -- the provider's moves, made by the merchant through our own API and told to the peer ----


def _provider_processes(session: Session, model, link, key, provider: Participant, state):
    """Return (object, DSP link) of the DSP processes on this provider's side, newest first."""
    query = (
        select(model, link)
        .join(link, key == model.id)
        .where(model.provider_id == provider.id)
        .order_by(link.created_at.desc())
        .limit(200)
    )
    if state is not None:
        query = query.where(model.state == state)
    return [(a, b) for a, b in session.execute(query).all()]


def provider_negotiations(
    session: Session, provider: Participant, *, state: str | None
) -> list[tuple[Contract, DspNegotiation]]:
    """Return the DSP negotiations on this provider's offers (newest first), by our state."""
    return _provider_processes(
        session, Contract, DspNegotiation, DspNegotiation.contract_id, provider, state
    )


def provider_agree(
    session: Session, gateway: Gateway, *, provider_pid: str, provider: Participant, jws: str
) -> tuple[Contract, DspNegotiation, dict[str, Any]]:
    """The merchant signs a DSP-requested contract (negotiation.agree: REQUESTED → AGREED);
    return the ContractAgreementMessage for the consumer."""
    contract, link = _negotiation(session, gateway, provider_pid, provider)
    contract, _entry = negotiation.agree(
        session, gateway, contract_id=contract.id, provider=provider, jws=jws
    )
    return contract, link, service.agreement_message(contract, link.consumer_pid)


def provider_offer(
    session: Session,
    gateway: Gateway,
    *,
    provider_pid: str,
    provider: Participant,
    offer_id: str | None,
) -> tuple[Contract, DspNegotiation, dict[str, Any]]:
    """The merchant answers a DSP request with an offer (negotiation.offer: REQUESTED →
    OFFERED, one of the product's offers); return the ContractOfferMessage for the consumer."""
    contract, link = _negotiation(session, gateway, provider_pid, provider)
    if contract.provider_id != provider.id:
        raise not_found("negotiation", provider_pid)
    contract, _entry = negotiation.offer(
        session, gateway, contract_id=contract.id, provider=provider, offer_id=offer_id
    )
    stored, _terms = products.get_offer(session, contract.offer_id)
    body = service.offer_message(contract, link.consumer_pid, stored)
    return contract, link, body


# After FINALIZED the merchant ends a DSP agreement as the contract's offer allows (its
# `termination`); the consumer is told by a ContractNegotiationTerminationMessage.
_RUNNING = (ContractState.FINALIZED, ContractState.SUSPENDED)


def provider_terminate(
    session: Session, gateway: Gateway, *, provider_pid: str, provider: Participant, reason: str
) -> tuple[Contract, DspNegotiation, dict[str, Any]]:
    """The merchant ends a DSP negotiation (negotiation.act terminate: before FINALIZED, or
    after it as the offer's `termination` allows); return the
    ContractNegotiationTerminationMessage for the consumer."""
    contract, link = _negotiation(session, gateway, provider_pid, provider)
    if contract.provider_id != provider.id:
        raise not_found("negotiation", provider_pid)
    if ContractState(contract.state) not in (*_TERMINABLE, *_RUNNING):
        raise conflict(
            "invalid-transition",
            "Negotiation already ended",
            f"negotiation {contract.id} is {contract.state}: it has ended",
        )
    contract, _entry = negotiation.act(
        session,
        gateway,
        contract_id=contract.id,
        action="terminate",
        actor=provider,
        reason=reason or "terminated by the provider",
    )
    body = service.termination_message(
        "ContractNegotiationTerminationMessage", contract.id, link.consumer_pid, reason
    )
    return contract, link, body


def provider_transfers(
    session: Session, provider: Participant, *, state: str | None
) -> list[tuple[Transfer, DspTransfer]]:
    """Return the DSP transfers of this provider's data (newest first), by state."""
    return _provider_processes(
        session, Transfer, DspTransfer, DspTransfer.transfer_id, provider, state
    )


_PROVIDER_TRANSFER = {
    "suspend": ("TransferSuspensionMessage", "suspension"),
    "terminate": ("TransferTerminationMessage", "termination"),
    "complete": ("TransferCompletionMessage", "completion"),
    "start": ("TransferStartMessage", "start"),
}


def provider_transfer_action(
    session: Session,
    gateway: Gateway,
    *,
    provider_pid: str,
    provider: Participant,
    action: str,
    reason: str,
) -> tuple[Transfer, DspTransfer, str, dict[str, Any]]:
    """The merchant starts (a REQUESTED transfer of a `transfer_start: provider` offer, or a
    SUSPENDED one again: decided by OPA), suspends, completes or terminates a DSP transfer
    (transfers.act, as our API does); return the callback path and the message for the
    consumer (a start's TransferStartMessage carries the pull's endpoint and token)."""
    transfer, link = _transfer(session, provider_pid, provider)
    if transfer.provider_id != provider.id:
        raise not_found("transfer", provider_pid)
    move = action
    if action == "start":
        move = "resume" if transfer.state == "SUSPENDED" else "start"
    transfer, data = transfers.act(
        session,
        gateway,
        subject=provider,
        transfer_id=transfer.id,
        action=move,
        reason=reason or f"{action} by the provider",
    )
    kind, path = _PROVIDER_TRANSFER[action]
    if action == "start":
        body = service.start_message(transfer, link.consumer_pid, data)
    elif action == "complete":
        body = service.completion_message(transfer, link.consumer_pid)
    else:
        body = service.termination_message(kind, transfer.id, link.consumer_pid, reason)
    return transfer, link, f"/transfers/{link.consumer_pid}/{path}", body
