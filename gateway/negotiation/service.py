"""Contract negotiation (Dataspace Protocol states): request, agree, verify, finalise, terminate.

Both parties sign the canonical contract document as a JWS with a key registered for them; the
gateway checks each signature, countersigns, and records every transition on the ledger.
"""

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import (
    ContractSignatureError,
    ContractState,
    InvalidTransition,
    allowed_next,
    check_transition,
    contract_document,
    contract_hash,
    countersign,
    verify_contract_signature,
)
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem, conflict, forbidden, not_found, unprocessable
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.negotiation.models import Contract, ContractRead, ContractRequest
from gateway.participants.models import Participant
from gateway.products import catalogue
from gateway.products import service as products
from ledger import Entry


def get(session: Session, contract_id: str, *, for_update: bool = False) -> Contract:
    """Return the contract (locked for update when asked), else raise 404."""
    query = select(Contract).where(Contract.id == contract_id)
    if for_update:
        query = query.with_for_update()
    contract = session.execute(query).scalar_one_or_none()
    if contract is None:
        raise not_found("contract", contract_id)
    return contract


def request(
    session: Session, gateway: Gateway, *, body: ContractRequest, consumer: Participant
) -> tuple[Contract, Entry]:
    """Open a negotiation on an offer: the contract is REQUESTED and its document fixed."""
    if "consumer" not in consumer.roles:
        raise forbidden("requesting an offer needs the role consumer")
    stored, offer = products.get_offer(session, body.offer_id)
    product = products.get(session, stored.product_id)
    if product.status != "listed":
        raise conflict(
            "product-not-listed",
            "Product not listed",
            f"product {product.id} is {product.status}; only listed products take new contracts",
        )
    if not catalogue.may_see(product, consumer):
        raise forbidden(
            f"product {product.id} is graded {product.grade}: it is not offered to consumers "
            f"outside the country (region {consumer.region})"
        )
    if body.purpose not in offer.purposes:
        raise unprocessable(
            f"purpose {body.purpose!r} is not offered; the offer allows {offer.purposes}"
        )
    if product.merchant_id == consumer.id:
        raise unprocessable("a merchant cannot contract with itself")
    now = clock.now()
    contract_id = new_id("ctr")
    document = contract_document(
        contract_id=contract_id,
        offer_id=stored.id,
        offer=offer,
        product_id=product.id,
        provider=product.merchant_id,
        consumer=consumer.id,
        purpose=body.purpose,
        not_before=now,
        not_after=now + offer.term,
        gateway=gateway.settings.issuer,
    )
    contract = Contract(
        id=contract_id,
        offer_id=stored.id,
        product_id=product.id,
        provider_id=product.merchant_id,
        consumer_id=consumer.id,
        purpose=body.purpose,
        state=ContractState.REQUESTED.value,
        document=document,
        document_hash=contract_hash(document),
        not_before=now,
        not_after=now + offer.term,
        rows_used=0,
        calls_used=0,
        created_at=now,
        updated_at=now,
    )
    session.add(contract)
    session.flush()
    entry = _record(session, gateway, contract, "contract.requested", by=consumer.id)
    commit(session)
    return contract, entry


def _record(
    session: Session, gateway: Gateway, contract: Contract, type: str, *, by: str, **extra
) -> Entry:
    return record(
        session,
        gateway.signer,
        type=type,
        data={
            "contract": contract.id,
            "state": contract.state,
            "offer": contract.offer_id,
            "product": contract.product_id,
            "provider": contract.provider_id,
            "consumer": contract.consumer_id,
            "purpose": contract.purpose,
            "document_hash": contract.document_hash,
            "by": by,
            **extra,
        },
    )


def _transition(contract: Contract, target: ContractState) -> None:
    try:
        check_transition(ContractState(contract.state), target)
    except InvalidTransition:
        raise conflict(
            "invalid-transition",
            "Invalid contract transition",
            f"contract {contract.id} is {contract.state}; it cannot become {target.value}",
            current_state=contract.state,
            allowed_next_states=allowed_next(ContractState(contract.state)),
        ) from None
    contract.state = target.value
    contract.updated_at = clock.now()


def _check_signature(contract: Contract, signer: Participant, jws: str) -> None:
    """Raise 422 unless `jws` is the signer's valid JWS over this contract's document."""
    try:
        kid = jwt.get_unverified_header(jws).get("kid")
    except jwt.PyJWTError as exc:
        raise unprocessable(f"signature is not a compact JWS: {exc}") from None
    keys = {k["kid"]: k for k in signer.jwks["keys"]}
    if kid not in keys:
        raise unprocessable(
            f"signature names key {kid!r}, which is not registered for {signer.id} "
            f"(registered: {sorted(keys)})"
        )
    try:
        verify_contract_signature(jws, contract.document, keys[kid])
    except ContractSignatureError as exc:
        raise Problem(
            422,
            "invalid-signature",
            "Invalid contract signature",
            f"the signature of {signer.id} does not verify: {exc}",
        ) from None


def agree(
    session: Session, gateway: Gateway, *, contract_id: str, provider: Participant, jws: str
) -> tuple[Contract, Entry]:
    """The provider signs the contract: REQUESTED → AGREED."""
    contract = get(session, contract_id, for_update=True)
    if contract.provider_id != provider.id:
        raise forbidden(
            f"only the provider {contract.provider_id} agrees to contract {contract.id}"
        )
    _transition(contract, ContractState.AGREED)
    _check_signature(contract, provider, jws)
    contract.provider_signature = jws
    entry = _record(
        session,
        gateway,
        contract,
        "contract.agreed",
        by=provider.id,
        signature_hash=content_hash(jws),
    )
    commit(session)
    return contract, entry


def verify(
    session: Session, gateway: Gateway, *, contract_id: str, consumer: Participant, jws: str
) -> tuple[Contract, Entry]:
    """The consumer signs: AGREED → VERIFIED; the gateway countersigns: → FINALIZED."""
    contract = get(session, contract_id, for_update=True)
    if contract.consumer_id != consumer.id:
        raise forbidden(f"only the consumer {contract.consumer_id} verifies contract {contract.id}")
    _transition(contract, ContractState.VERIFIED)
    _check_signature(contract, consumer, jws)
    contract.consumer_signature = jws
    _record(
        session,
        gateway,
        contract,
        "contract.verified",
        by=consumer.id,
        signature_hash=content_hash(jws),
    )
    _transition(contract, ContractState.FINALIZED)
    contract.gateway_signature = countersign(
        contract.document,
        contract.provider_signature,
        jws,
        gateway.private_key,
        kid=gateway.signer.kid,
    )
    entry = _record(
        session,
        gateway,
        contract,
        "contract.finalized",
        by="gateway",
        not_before=clock.rfc3339(clock.as_utc(contract.not_before)),
        not_after=clock.rfc3339(clock.as_utc(contract.not_after)),
        gateway_signature_hash=content_hash(contract.gateway_signature),
    )
    commit(session)
    return contract, entry


def terminate(
    session: Session, gateway: Gateway, *, contract_id: str, party: Participant
) -> tuple[Contract, Entry]:
    """Either party ends the contract: → TERMINATED; the very next exchange is refused."""
    contract = get(session, contract_id, for_update=True)
    if party.id not in (contract.provider_id, contract.consumer_id):
        raise forbidden(f"only the parties of contract {contract.id} can terminate it")
    _transition(contract, ContractState.TERMINATED)
    entry = _record(session, gateway, contract, "contract.terminated", by=party.id)
    commit(session)
    return contract, entry


def visible_to(contract: Contract, participant: Participant) -> bool:
    """Return whether the participant may read the contract (its parties and auditors)."""
    return participant.id in (contract.provider_id, contract.consumer_id) or bool(
        {"auditor", "admin"} & set(participant.roles)
    )


def to_read(contract: Contract, entry: Entry | None = None) -> ContractRead:
    """Return the API view of a contract, with its allowed next states."""
    return ContractRead(
        id=contract.id,
        offer_id=contract.offer_id,
        product_id=contract.product_id,
        provider_id=contract.provider_id,
        consumer_id=contract.consumer_id,
        purpose=contract.purpose,
        state=contract.state,
        allowed_next_states=allowed_next(ContractState(contract.state)),
        document=contract.document,
        document_hash=contract.document_hash,
        signatures={
            "provider": contract.provider_signature,
            "consumer": contract.consumer_signature,
            "gateway": contract.gateway_signature,
        },
        not_before=contract.not_before,
        not_after=contract.not_after,
        usage={"rows": contract.rows_used, "calls": contract.calls_used},
        created_at=contract.created_at,
        updated_at=contract.updated_at,
        ledger_seq=entry.seq if entry else None,
    )
