"""The exchange: decide with OPA, apply obligations, deliver, meter, and record the evidence.

The rows leave only in the reply of a transaction that has durably written the ledger entry
describing them; every decision, allowed or denied, is recorded the same way.
"""

from typing import Any

from sqlalchemy.orm import Session

from contracts import Offer
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.exchanges import obligations as obl
from gateway.exchanges.models import Decision, ExchangeRequest, ExchangeResult, Receipt
from gateway.negotiation import service as contracts
from gateway.negotiation.models import Contract
from gateway.participants.models import Participant
from gateway.policy.client import PolicyDecision, PolicyError
from gateway.products import service as products
from gateway.products.models import Product
from gateway.resources import service as resources
from gateway.resources.models import Resource
from ledger import Entry


def policy_input(
    *,
    subject: Participant,
    request: ExchangeRequest,
    fields: list[str],
    resource: Resource,
    product: Product,
    contract: Contract,
    offer: Offer,
) -> dict[str, Any]:
    """Return the OPA input document of an exchange (specs/policy-input.md)."""
    return {
        "now": clock.rfc3339(clock.now()),
        "action": "exchange",
        "subject": {"id": subject.id, "roles": list(subject.roles), "region": subject.region},
        "purpose": request.purpose,
        "delivery": request.delivery,
        "requested_fields": fields,
        "resource": {
            "id": resource.id,
            "grade": resource.grade,
            "level": resource.level,
            "personal_information": resource.personal_information,
            "sensitive_personal_information": resource.sensitive_personal_information,
            "fields": [
                {"name": f["name"], "personal": f["personal"], "sensitive": f["sensitive"]}
                for f in resource.fields
            ],
        },
        "product": {
            "id": product.id,
            "delivery_modes": list(product.delivery_modes),
            "public_interest": product.public_interest,
        },
        "contract": {
            "id": contract.id,
            "state": contract.state,
            "consumer": contract.consumer_id,
            "purposes": [contract.purpose],
            "not_before": clock.rfc3339(clock.as_utc(contract.not_before)),
            "not_after": clock.rfc3339(clock.as_utc(contract.not_after)),
            "quota": {"rows": offer.quota_rows, "calls": offer.quota_calls},
            "usage": {"rows": contract.rows_used, "calls": contract.calls_used},
            "fields": list(offer.fields) if offer.fields is not None else None,
            "lawful_basis_fields": list(offer.lawful_basis_fields),
            "holder_approved": False,
            "region": offer.region,
        },
    }


def _deny(
    session: Session,
    gateway: Gateway,
    *,
    decision_id: str,
    subject: Participant,
    contract: Contract,
    policy_input: dict[str, Any],
    result: dict[str, Any],
    status: int,
) -> Problem:
    """Record a denial (decision row and ledger entry, committed) and return its problem."""
    entry = record(
        session,
        gateway.signer,
        type="exchange.denied",
        data={
            "decision": decision_id,
            "contract": contract.id,
            "consumer": subject.id,
            "product": contract.product_id,
            "purpose": policy_input["purpose"],
            "reasons": [r["code"] for r in result["reasons"]],
            "input_hash": content_hash(policy_input),
        },
    )
    session.add(
        Decision(
            id=decision_id,
            subject_id=subject.id,
            contract_id=contract.id,
            allow=False,
            input=policy_input,
            result=result,
            policy_version=None,
            rows_delivered=0,
            ledger_seq=entry.seq,
            created_at=clock.now(),
        )
    )
    commit(session)
    reasons = result["reasons"]
    first = reasons[0] if reasons else {"code": "DENIED", "title": "Denied", "detail": ""}
    unavailable = status == 503
    return Problem(
        status,
        "policy-unavailable" if unavailable else "policy-denied",
        "Policy engine unavailable" if unavailable else "Denied by policy",
        "; ".join(r.get("detail") or r["title"] for r in reasons) or first["title"],
        reasons=reasons,
        decision_id=decision_id,
        ledger_seq=entry.seq,
    )


def _error_result(code: str, title: str, detail: str) -> dict[str, Any]:
    return {
        "allow": False,
        "reasons": [{"code": code, "title": title, "detail": detail}],
        "obligations": {},
    }


def exchange(
    session: Session, gateway: Gateway, *, subject: Participant, request: ExchangeRequest
) -> ExchangeResult:
    """Run one exchange; return the delivery with its receipt, or raise the denial's problem."""
    contract = contracts.get(session, request.contract_id, for_update=True)
    product = products.get(session, contract.product_id)
    resource = resources.get(session, product.resource_id)
    _, offer = products.get_offer(session, contract.offer_id)
    available = offer.fields if offer.fields is not None else [f["name"] for f in resource.fields]
    fields = request.requested(available)
    decision_id = new_id("dec")
    the_input = policy_input(
        subject=subject,
        request=request,
        fields=fields,
        resource=resource,
        product=product,
        contract=contract,
        offer=offer,
    )
    deny = dict(decision_id=decision_id, subject=subject, contract=contract, policy_input=the_input)
    try:
        decision: PolicyDecision = gateway.policy.decide(the_input)
    except PolicyError as exc:
        result = _error_result(exc.code, "No policy decision", str(exc))
        raise _deny(session, gateway, result=result, status=exc.status, **deny) from None
    result = decision.model_dump(mode="json")
    if not decision.allow:
        raise _deny(session, gateway, result=result, status=403, **deny)
    try:
        obl.check_known(decision.obligations, delivery=request.delivery)
    except obl.UnsupportedObligation as exc:
        result = _error_result(
            "OBLIGATION_UNSUPPORTED", "Obligation the gateway cannot honour", str(exc)
        )
        raise _deny(session, gateway, result=result, status=403, **deny) from None

    mark = (
        obl.watermark_for(decision_id, subject.id)
        if decision.obligations.get("watermark")
        else None
    )
    delivered_fields, rows = obl.apply(
        resource.rows,
        fields=fields,
        obligations=decision.obligations,
        limit=request.limit,
        watermark=mark,
    )
    digest = content_hash(rows)
    contract.rows_used += len(rows)
    contract.calls_used += 1
    entry: Entry = record(
        session,
        gateway.signer,
        type="exchange.delivered",
        data={
            "decision": decision_id,
            "contract": contract.id,
            "consumer": subject.id,
            "provider": contract.provider_id,
            "product": product.id,
            "resource": resource.id,
            "purpose": request.purpose,
            "delivery": request.delivery,
            "fields": delivered_fields,
            "masked": sorted(set(decision.obligations.get("mask") or []) & set(delivered_fields)),
            "rows": len(rows),
            "content_hash": digest,
            "watermark": mark,
            "input_hash": content_hash(the_input),
        },
    )
    session.add(
        Decision(
            id=decision_id,
            subject_id=subject.id,
            contract_id=contract.id,
            allow=True,
            input=the_input,
            result=result,
            policy_version=None,
            rows_delivered=len(rows),
            ledger_seq=entry.seq,
            created_at=clock.now(),
        )
    )
    commit(session)
    return ExchangeResult(
        exchange_id=decision_id,
        contract_id=contract.id,
        purpose=request.purpose,
        fields=delivered_fields,
        masked=entry.data["masked"],
        row_count=len(rows),
        rows=rows,
        watermark=mark,
        content_hash=digest,
        receipt=Receipt(
            seq=entry.seq, hash=entry.hash, sig=entry.sig, kid=entry.kid, body=entry.body,
            url=f"/ledger/receipts/{entry.seq}",
        ),
    )
