"""Contract negotiation (Dataspace Protocol states): request, agree, verify, finalise, terminate.

Both parties sign the canonical contract document as a JWS with a key registered for them; the
gateway checks each signature, countersigns, and records every transition on the ledger.
"""

from collections.abc import Callable

import jwt
from sqlalchemy import or_, select
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
    countersign_by_message,
    verify_contract_signature,
)
from gateway.authorisations import service as authorisations
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.db import fetch
from gateway.core.errors import Problem, conflict, forbidden, not_found, unprocessable
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.negotiation.models import Contract, ContractRead, ContractRequest
from gateway.participants.models import Participant
from gateway.products import catalogue
from gateway.products import service as products
from gateway.products.models import ProductOffer
from gateway.resources import service as resources
from ledger import Entry


def get(
    session: Session,
    contract_id: str,
    *,
    for_update: bool = False,
    viewer: Participant | None = None,
) -> Contract:
    """Return the contract (locked for update when asked), else raise 404; also 404, as if it
    did not exist, when `viewer` is given and is neither a party nor an auditor (`visible_to`)."""
    contract = fetch(session, Contract, contract_id, kind="contract", for_update=for_update)
    if viewer is not None and not visible_to(contract, viewer):
        raise not_found("contract", contract_id)
    return contract


def request(
    session: Session,
    gateway: Gateway,
    *,
    body: ContractRequest,
    consumer: Participant,
    along: Callable[[Contract], None] | None = None,
) -> tuple[Contract, Entry]:
    """Open a negotiation on an offer: the contract is REQUESTED and its document fixed.
    `along` adds what must commit with the contract (a DSP negotiation's link), in its
    transaction: both are made, or neither."""
    if "consumer" not in consumer.roles:
        raise forbidden("requesting an offer needs the role consumer")
    stored, offer = products.get_offer(session, body.offer_id)
    product = products.get(session, stored.product_id)
    if not products.visible_to(product, consumer):  # a draft's offer: as if it did not exist
        raise not_found("offer", body.offer_id)
    # Its authorisation's term may have passed since the last sweep: notice it now.
    authorisations.expire_if_over(
        session, gateway.signer, authorisations.get(session, product.authorisation_id)
    )
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
    if not catalogue.may_request(offer.region, consumer):
        raise forbidden(
            f"offer {stored.id} restricts use to region {offer.region}: it is not offered to "
            f"consumers outside the country (region {consumer.region})"
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
    resource = resources.get(session, product.resource_id)
    contract = Contract(
        id=contract_id,
        holder_id=resource.holder_id,
        approval_required=resource.grade == "important",
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
    entry = _record(
        session,
        gateway,
        contract,
        "contract.requested",
        by=consumer.id,
        holder_approval_required=contract.approval_required,
    )
    if along is not None:
        along(contract)
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
    """The provider signs the contract: REQUESTED → AGREED (after the holder's approval, for
    important data)."""
    contract = get(session, contract_id, for_update=True, viewer=provider)
    if contract.provider_id != provider.id:
        raise forbidden(
            f"only the provider {contract.provider_id} agrees to contract {contract.id}"
        )
    if contract.approval_required and contract.holder_approved_at is None:
        raise conflict(
            "holder-approval-required",
            "Holder approval required",
            f"contract {contract.id} is on important data (重要数据): its holder "
            f"{contract.holder_id} must approve it (POST /contracts/{contract.id}/approve) "
            "before the provider agrees",
            current_state=contract.state,
            allowed_next_states=allowed_next(ContractState(contract.state)),
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
    contract = get(session, contract_id, for_update=True, viewer=consumer)
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
    return _finalize(
        session,
        gateway,
        contract,
        countersign(
            contract.document,
            contract.provider_signature,
            jws,
            gateway.private_key,
            kid=gateway.signer.kid,
        ),
    )


def verify_by_channel(
    session: Session,
    gateway: Gateway,
    *,
    contract_id: str,
    consumer: Participant,
    peer_id: str,
    message_hash: str,
) -> tuple[Contract, Entry]:
    """A DSP connector's consumer verifies by message: AGREED → VERIFIED → FINALIZED.

    Only for a consumer whose home is a registered, active `kind: dsp` peer (a DSP connector
    that signs no contracts), its message authenticated by the peer channel (the caller checks
    both). The message's digest stands for the consumer's signature: it is in the
    `contract.verified` entry (`verification_hash`, `verified_by: "dsp-message"`) and in the
    gateway's countersignature (`consumer_verification: "sha256:<digest>"` in place of the
    consumer's JWS, contracts.countersign_by_message); the contract has no consumer
    signature."""
    contract = get(session, contract_id, for_update=True, viewer=consumer)
    if contract.consumer_id != consumer.id:
        raise forbidden(f"only the consumer {contract.consumer_id} verifies contract {contract.id}")
    _transition(contract, ContractState.VERIFIED)
    _record(
        session,
        gateway,
        contract,
        "contract.verified",
        by=consumer.id,
        verified_by="dsp-message",
        peer=peer_id,
        verification_hash=message_hash,
    )
    return _finalize(
        session,
        gateway,
        contract,
        countersign_by_message(
            contract.document,
            contract.provider_signature,
            message_hash,
            gateway.private_key,
            kid=gateway.signer.kid,
        ),
    )


def _finalize(
    session: Session, gateway: Gateway, contract: Contract, gateway_signature: str
) -> tuple[Contract, Entry]:
    _transition(contract, ContractState.FINALIZED)
    contract.gateway_signature = gateway_signature
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


def _rebase(session: Session, gateway: Gateway, contract: Contract, offer_id: str) -> None:
    """Put the contract on another offer of its product: its document is made anew on that
    offer's terms (the period starts now); raise 422 when the offer is no offer of the product,
    is not offered to the consumer's region, or does not allow the contract's purpose."""
    try:
        stored, offer = products.get_offer(session, offer_id)
    except Problem:
        raise unprocessable(
            f"offer {offer_id!r} is not an offer of product {contract.product_id}"
        ) from None
    if stored.product_id != contract.product_id:
        raise unprocessable(
            f"offer {offer_id} is an offer of product {stored.product_id}, not of "
            f"{contract.product_id}: a negotiation stays on its product"
        )
    consumer = session.get(Participant, contract.consumer_id)
    if consumer is None or not catalogue.may_request(offer.region, consumer):
        raise unprocessable(
            f"offer {stored.id} restricts use to region {offer.region}: it is not offered to "
            f"consumer {contract.consumer_id}"
        )
    if contract.purpose not in offer.purposes:
        raise unprocessable(
            f"offer {stored.id} does not allow purpose {contract.purpose!r} (it allows "
            f"{offer.purposes})"
        )
    now = clock.now()
    contract.offer_id = stored.id
    contract.document = contract_document(
        contract_id=contract.id,
        offer_id=stored.id,
        offer=offer,
        product_id=contract.product_id,
        provider=contract.provider_id,
        consumer=contract.consumer_id,
        purpose=contract.purpose,
        not_before=now,
        not_after=now + offer.term,
        gateway=gateway.settings.issuer,
    )
    contract.document_hash = contract_hash(contract.document)
    contract.not_before, contract.not_after = now, now + offer.term


def offer(
    session: Session,
    gateway: Gateway,
    *,
    contract_id: str,
    provider: Participant,
    offer_id: str | None = None,
) -> tuple[Contract, Entry]:
    """The provider answers a REQUESTED contract with an offer: REQUESTED → OFFERED.

    The offer is one of the product's own offers (`offer_id`; by default the one the contract
    stands on), so every offer a merchant makes passed the checks of drafting (price within
    the authorisation's fee cap, fields, region); the contract's document is made anew on it."""
    contract = _load(session, gateway, contract_id, provider)
    if contract.provider_id != provider.id:
        raise forbidden(f"only the provider {contract.provider_id} offers on {contract.id}")
    _transition(contract, ContractState.OFFERED)
    if offer_id is not None and offer_id != contract.offer_id:
        _rebase(session, gateway, contract, offer_id)
    entry = _record(session, gateway, contract, "contract.offered", by=provider.id)
    commit(session)
    return contract, entry


def accept(
    session: Session, gateway: Gateway, *, contract_id: str, consumer: Participant
) -> tuple[Contract, Entry]:
    """The consumer accepts the provider's offer: OFFERED → ACCEPTED (the provider agrees next)."""
    contract = _load(session, gateway, contract_id, consumer)
    if contract.consumer_id != consumer.id:
        raise forbidden(f"only the consumer {contract.consumer_id} accepts contract {contract.id}")
    _transition(contract, ContractState.ACCEPTED)
    entry = _record(session, gateway, contract, "contract.accepted", by=consumer.id)
    commit(session)
    return contract, entry


# A counter-offer names an offer of at most this many characters (it is kept on the ledger).
MAX_COUNTER_OFFER_ID = 200


def counter(
    session: Session,
    gateway: Gateway,
    *,
    contract_id: str,
    consumer: Participant,
    offer_id: str,
    offer_hash: str,
) -> tuple[Contract, Entry]:
    """The consumer answers the provider's offer with a request of its own: OFFERED →
    REQUESTED (the provider offers again, agrees or terminates).

    A counter-offer that names another offer of the product puts the contract on it (its
    document anew); any other terms are recorded (`requested_offer`, `offer_hash`: the
    digest of the policy the consumer sent) and the contract keeps the terms the provider
    offered: the provider's next move answers them."""
    contract = _load(session, gateway, contract_id, consumer)
    if contract.consumer_id != consumer.id:
        raise forbidden(f"only the consumer {contract.consumer_id} counters on {contract.id}")
    if len(offer_id) > MAX_COUNTER_OFFER_ID:
        raise unprocessable(f"offer id: at most {MAX_COUNTER_OFFER_ID} characters")
    _transition(contract, ContractState.REQUESTED)
    stored = session.get(ProductOffer, offer_id)
    rebased = stored is not None and stored.product_id == contract.product_id
    if rebased and offer_id != contract.offer_id:
        _rebase(session, gateway, contract, offer_id)
    entry = _record(
        session,
        gateway,
        contract,
        "contract.counter_requested",
        by=consumer.id,
        requested_offer=offer_id,
        offer_hash=offer_hash,
        adopted=rebased,
    )
    commit(session)
    return contract, entry


def _load(
    session: Session, gateway: Gateway, contract_id: str, viewer: Participant | None = None
) -> Contract:
    """Return the contract locked for update, first recording its expiry if its term is over
    (404 before anything happens when `viewer` may not see it)."""
    contract = get(session, contract_id, for_update=True, viewer=viewer)
    if expire_if_due(session, gateway, contract) is not None:
        commit(session)  # the expiry stands even if the caller's move is then refused
        contract = get(session, contract_id, for_update=True)
    return contract


def expire_if_due(session: Session, gateway: Gateway, contract: Contract) -> Entry | None:
    """Move a running contract whose term is over (now ≥ not_after) to EXPIRED and record it.

    Inside the caller's transaction: returns the `contract.expired` entry, or None when the
    contract is not running or still within its term.
    """
    if contract.state not in (ContractState.FINALIZED, ContractState.SUSPENDED):
        return None
    if clock.now() < clock.as_utc(contract.not_after):
        return None
    _transition(contract, ContractState.EXPIRED)
    return _record(
        session,
        gateway,
        contract,
        "contract.expired",
        by="gateway",
        not_after=clock.rfc3339(clock.as_utc(contract.not_after)),
    )


def current(
    session: Session, gateway: Gateway, contract_id: str, *, loaded: Contract | None = None
) -> Contract:
    """Return the contract as it stands now: a running one past its term is recorded EXPIRED.

    `loaded`: the contract as read already in this transaction, so it is not read again."""
    contract = loaded if loaded is not None else get(session, contract_id)
    if due(contract):
        return _load(session, gateway, contract_id)  # locks, then records the expiry once
    return contract


def due(contract: Contract) -> bool:
    """Return whether the contract is running past its term (its expiry is yet to be recorded)."""
    running = contract.state in (ContractState.FINALIZED, ContractState.SUSPENDED)
    return running and clock.now() >= clock.as_utc(contract.not_after)


def _is_admin(participant: Participant) -> bool:
    return "admin" in participant.roles


def approve(
    session: Session, gateway: Gateway, *, contract_id: str, holder: Participant, reason: str = ""
) -> tuple[Contract, Entry]:
    """The resource's holder approves a contract on important data, before AGREED."""
    contract = _load(session, gateway, contract_id, holder)
    if holder.id != contract.holder_id:
        raise forbidden(f"only the holder {contract.holder_id} approves contract {contract.id}")
    if not contract.approval_required:
        raise conflict(
            "approval-not-required",
            "No approval needed",
            f"contract {contract.id} is not on important data; it needs no holder approval",
        )
    if contract.holder_approved_at is not None or contract.state != ContractState.REQUESTED:
        raise conflict(
            "invalid-transition",
            "Holder approval not possible now",
            f"contract {contract.id} is {contract.state}"
            + (" and already approved" if contract.holder_approved_at else "")
            + "; the holder approves a REQUESTED contract once, before AGREED",
            current_state=contract.state,
            allowed_next_states=allowed_next(ContractState(contract.state)),
        )
    contract.holder_approved_at = clock.now()
    contract.updated_at = contract.holder_approved_at
    entry = _record(
        session, gateway, contract, "contract.holder_approved", by=holder.id, reason=reason
    )
    commit(session)
    return contract, entry


def _may_end(contract: Contract, actor: Participant, action: str, offer_termination: str) -> None:
    """Raise 403 unless `actor` may suspend, reinstate, revoke, terminate or refuse the contract."""
    provider = actor.id == contract.provider_id
    consumer = actor.id == contract.consumer_id
    holder = actor.id == contract.holder_id
    admin = _is_admin(actor)
    if action in ("suspend", "reinstate"):
        if not (provider or admin):
            raise forbidden(
                f"only the provider {contract.provider_id} or the platform admin may {action} "
                f"contract {contract.id}"
            )
    elif action == "revoke":
        if not (provider or holder or admin):
            raise forbidden(
                f"only the provider, the data holder or the platform admin may revoke contract "
                f"{contract.id}"
            )
    elif action == "refuse":
        if not holder:
            raise forbidden(f"only the holder {contract.holder_id} refuses contract {contract.id}")
    elif action == "terminate":
        if not (provider or consumer):
            raise forbidden(f"only the parties of contract {contract.id} can terminate it")
        running = contract.state in (ContractState.FINALIZED, ContractState.SUSPENDED)
        if running and offer_termination == "none":
            raise forbidden(
                f"the offer of contract {contract.id} allows no termination once FINALIZED "
                "(termination: none); it ends at expiry or by revocation"
            )
        if running and offer_termination == "provider" and not provider:
            raise forbidden(
                f"the offer of contract {contract.id} lets only the provider terminate it once "
                "FINALIZED (termination: provider)"
            )


_ACTIONS = {
    "suspend": (ContractState.SUSPENDED, "contract.suspended"),
    "reinstate": (ContractState.FINALIZED, "contract.reinstated"),
    "revoke": (ContractState.REVOKED, "contract.revoked"),
    "terminate": (ContractState.TERMINATED, "contract.terminated"),
    "refuse": (ContractState.TERMINATED, "contract.holder_refused"),
}


def act(
    session: Session,
    gateway: Gateway,
    *,
    contract_id: str,
    action: str,
    actor: Participant,
    reason: str = "",
) -> tuple[Contract, Entry]:
    """Suspend, reinstate, revoke or terminate a contract (or the holder refuses it); record it.

    The very next exchange under a suspended, revoked or terminated contract is refused.
    """
    contract = _load(session, gateway, contract_id, actor)
    termination = (contract.document.get("offer") or {}).get("termination", "either")
    _may_end(contract, actor, action, termination)
    target, entry_type = _ACTIONS[action]
    if action == "reinstate" and contract.state != ContractState.SUSPENDED:
        raise conflict(
            "invalid-transition",
            "Invalid contract transition",
            f"contract {contract.id} is {contract.state}; only a SUSPENDED contract is reinstated",
            current_state=contract.state,
            allowed_next_states=allowed_next(ContractState(contract.state)),
        )
    if action == "refuse" and (
        not contract.approval_required
        or contract.holder_approved_at is not None
        or contract.state != ContractState.REQUESTED
    ):
        raise conflict(
            "invalid-transition",
            "Holder refusal not possible now",
            f"contract {contract.id} is {contract.state}; the holder refuses only a REQUESTED "
            "contract on important data it has not approved",
            current_state=contract.state,
            allowed_next_states=allowed_next(ContractState(contract.state)),
        )
    _transition(contract, target)
    entry = _record(session, gateway, contract, entry_type, by=actor.id, reason=reason)
    commit(session)
    return contract, entry


def terminate(
    session: Session, gateway: Gateway, *, contract_id: str, party: Participant
) -> tuple[Contract, Entry]:
    """Either party ends the contract (as the offer allows): → TERMINATED."""
    return act(session, gateway, contract_id=contract_id, action="terminate", actor=party)


def list_visible(
    session: Session,
    gateway: Gateway,
    *,
    viewer: Participant,
    role: str | None = None,
    state: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> list[Contract]:
    """Return a page of the contracts `viewer` may read, newest first: those it is the consumer,
    provider or holder of (only the one `role` when given), or every contract to auditors and
    admins when no role narrows it. A running contract past its term is recorded EXPIRED first."""
    query = select(Contract)
    mine = {
        "consumer": Contract.consumer_id == viewer.id,
        "provider": Contract.provider_id == viewer.id,
        "holder": Contract.holder_id == viewer.id,
    }
    if role is not None:
        query = query.where(mine[role])
    elif not {"auditor", "admin"} & set(viewer.roles):
        query = query.where(or_(*mine.values()))
    if state is not None:
        query = query.where(Contract.state == state)
    query = query.order_by(Contract.created_at.desc(), Contract.id.desc())
    found = list(session.execute(query.offset(offset).limit(limit)).scalars())
    return [current(session, gateway, c.id, loaded=c) for c in found]


def visible_to(contract: Contract, participant: Participant) -> bool:
    """Return whether the participant may read the contract (its parties and auditors)."""
    return participant.id in (
        contract.provider_id,
        contract.consumer_id,
        contract.holder_id,
    ) or bool({"auditor", "admin"} & set(participant.roles))


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
        holder_approval={
            "required": contract.approval_required,
            "holder": contract.holder_id,
            "approved_at": contract.holder_approved_at,
        },
        termination=(contract.document.get("offer") or {}).get("termination", "either"),
        usage={"rows": contract.rows_used, "calls": contract.calls_used},
        quota={
            "rows": (contract.document.get("offer") or {}).get("quota_rows"),
            "calls": (contract.document.get("offer") or {}).get("quota_calls"),
        },
        created_at=contract.created_at,
        updated_at=contract.updated_at,
        ledger_seq=entry.seq if entry else None,
    )
