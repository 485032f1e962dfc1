"""DSP steps told as our own: each calls the service our own API calls for the same step.

Nothing a DSP peer sends reaches a product, contract or transfer except through the function
our API uses for that move (`negotiation.request`, `negotiation.act`, …), so the same checks,
policy decisions and ledger entries apply; this module only translates identifiers and states.
"""

from typing import Any

from sqlalchemy.orm import Session

from contracts import ContractState
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem, not_found
from gateway.dsp import service
from gateway.dsp.models import DspNegotiation
from gateway.evidence.service import commit
from gateway.negotiation import service as negotiation
from gateway.negotiation.models import Contract, ContractRequest
from gateway.participants.models import Participant
from gateway.products import catalogue
from gateway.products import service as products
from gateway.products.models import Product, ProductOffer

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
    """A ContractRequestMessage opens a negotiation: our contract request, then the peer's
    process id and callback address beside it."""
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
    callback = service.text(body, "callbackAddress")
    if callback is not None and (len(callback) > 2000 or not callback.startswith("http")):
        raise service.bad_message("callbackAddress: an http(s) URL of at most 2000 characters")
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
    contract, _entry = negotiation.request(session, gateway, body=wanted, consumer=consumer)
    link = DspNegotiation(
        contract_id=contract.id,
        consumer_pid=consumer_pid,
        callback_address=callback,
        created_at=clock.now(),
    )
    session.add(link)
    commit(session)
    return contract, link


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
    """A ContractNegotiationEventMessage from the consumer: ACCEPTED takes an offer the provider
    made; dsgw providers make none (the catalogue offer is the offer), so it is refused."""
    contract, link = _negotiation(session, gateway, provider_pid, party)
    _same_process(link, body)
    kind = service.text(body, "eventType")
    raise service.bad_message(
        f"event {kind!r} does not apply: negotiation {contract.id} is "
        f"{service.dsp_state(contract)}; the consumer sends ACCEPTED only on an OFFERED "
        "negotiation, and a dsgw provider offers nothing beyond its catalogue offer"
    )


def verify(
    session: Session,
    gateway: Gateway,
    *,
    provider_pid: str,
    party: Participant,
    body: dict[str, Any],
) -> tuple[Contract, DspNegotiation]:
    """A ContractAgreementVerificationMessage: the consumer's signature over the agreement
    (member `https://dsgw.dev/ns/dcat#signature`, a compact JWS) verifies our contract."""
    contract, link = _negotiation(session, gateway, provider_pid, party)
    _same_process(link, body)
    if ContractState(contract.state) != ContractState.AGREED:
        raise service.bad_message(
            f"negotiation {contract.id} is {service.dsp_state(contract)}: only an AGREED "
            "negotiation is verified"
        )
    jws = body.get(service.DSGW_TERMS + "signature")
    if not isinstance(jws, str) or not jws:
        raise service.bad_message(
            "a dsgw agreement is a signed contract: the verification carries the consumer's "
            f"compact JWS over the agreement's contract document ({service.DSGW_TERMS}signature)"
        )
    contract, _entry = negotiation.verify(
        session, gateway, contract_id=contract.id, consumer=party, jws=jws
    )
    return contract, link
