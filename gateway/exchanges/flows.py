"""The exchange: decide with OPA, apply obligations, deliver, meter, and record the evidence.

The rows leave only in the reply of a transaction that has durably written the ledger entry
describing them; every decision, allowed or denied, is recorded the same way.
"""

from typing import Any

from sqlalchemy.orm import Session

from contracts import Offer
from gateway.authorisations import service as authorisations
from gateway.compute import flows as compute
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
from gateway.policy import versions as policy_versions
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
            "fields": [_field_input(f) for f in resource.fields],
        },
        "product": {
            "id": product.id,
            "delivery_modes": list(product.delivery_modes),
            "public_interest": product.public_interest,
            "status": product.status,
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
            "holder_approved": contract.holder_approved_at is not None,
            "region": offer.region,
            "price_fen": offer.price_fen,
        },
    }


def _field_input(field: dict[str, Any]) -> dict[str, Any]:
    """Return a resource field as the policy sees it (its own grade and level when it has them)."""
    out = {"name": field["name"], "personal": field["personal"], "sensitive": field["sensitive"]}
    out.update({key: field[key] for key in ("grade", "level") if key in field})
    return out


def _deny(
    session: Session,
    gateway: Gateway,
    *,
    decision_id: str,
    subject: Participant,
    contract: Contract,
    policy_input: dict[str, Any],
    policy_version: str | None,
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
            "policy_version": policy_version,
            "exposure": result.get("exposure"),
        },
    )
    _keep_decision(
        session,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        allow=False,
        policy_input=policy_input,
        result=result,
        version=policy_version,
        rows=0,
        entry=entry,
    )
    reasons = result["reasons"]
    first = reasons[0] if reasons else {"code": "DENIED", "title": "Denied", "detail": ""}
    slug, title = (
        UNAVAILABLE.get(first["code"], UNAVAILABLE[None])
        if status == 503
        else ("policy-denied", "Denied by policy")
    )
    return Problem(
        status,
        slug,
        title,
        "; ".join(r.get("detail") or r["title"] for r in reasons) or first["title"],
        reasons=reasons,
        decision_id=decision_id,
        ledger_seq=entry.seq,
        policy_version=policy_version,
    )


# A 503 refusal's problem type: the policy engine's, unless the compute engine failed.
UNAVAILABLE = {
    None: ("policy-unavailable", "Policy engine unavailable"),
    "COMPUTE_FAILED": ("compute-unavailable", "Compute engine unavailable"),
}


def _keep_decision(
    session: Session,
    *,
    decision_id: str,
    subject: Participant,
    contract: Contract,
    allow: bool,
    policy_input: dict[str, Any],
    result: dict[str, Any],
    version: str | None,
    rows: int,
    entry: Entry,
) -> None:
    """Store the decision (input, result, version) beside its ledger entry and commit both."""
    session.add(
        Decision(
            id=decision_id,
            subject_id=subject.id,
            contract_id=contract.id,
            allow=allow,
            input=policy_input,
            result=result,
            policy_version=version,
            rows_delivered=rows,
            ledger_seq=entry.seq,
            created_at=clock.now(),
        )
    )
    commit(session)


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
    # An authorisation whose term has passed ends at this use, suspending its products (its own
    # transaction and evidence); the policy then sees the product suspended.
    product = products.get(session, contracts.get(session, request.contract_id).product_id)
    authorisations.expire_if_over(
        session, gateway.signer, authorisations.get(session, product.authorisation_id)
    )
    contract = contracts.get(session, request.contract_id, for_update=True)
    contracts.expire_if_due(session, gateway, contract)  # recorded with this exchange's evidence
    resource = resources.get(session, product.resource_id)
    _, offer = products.get_offer(session, contract.offer_id)
    available = offer.fields if offer.fields is not None else [f["name"] for f in resource.fields]
    # compute: the fields it reads (grouped on, filtered on, aggregated) are the ones judged.
    fields = (
        compute.touched_fields(request)
        if request.delivery == "compute"
        else request.requested(available)
    )
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
    if request.delivery == "compute":  # the terms, the query and the ε spent (specs/compute.md)
        the_input["compute"] = compute.policy_input(
            session,
            request=request,
            offer=offer,
            contract=contract,
            subject=subject,
            resource=resource,
        )
    version = policy_versions.current(session, gateway.signer, gateway.policy)
    deny = dict(
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        policy_input=the_input,
        policy_version=version,
    )
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
    privacy = None
    if request.delivery == "compute":
        try:
            out, privacy = compute.release(
                session,
                request=request,
                offer=offer,
                resource=resource,
                contract=contract,
                subject=subject,
                obligations=decision.obligations,
                watermark=mark,
            )
        except compute.Refused as exc:
            result = _error_result(exc.code, exc.title, str(exc))
            raise _deny(session, gateway, result=result, status=exc.status, **deny) from None
    else:
        out = obl.deliver(
            resource.rows,
            delivery=request.delivery,
            fields=fields,
            obligations=decision.obligations,
            limit=request.limit,
            watermark=mark,
            name=decision_id,
        )
    delivered_fields, rows, digest = out.fields, out.rows, out.content_hash
    contract.rows_used += out.source_rows
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
            "rows": out.source_rows,
            "content_hash": digest,
            "watermark": mark,
            "input_hash": content_hash(the_input),
            "policy_version": version,
            "exposure": result.get("exposure"),
            **({"file": {k: v for k, v in out.file.items() if k != "content"}} if out.file else {}),
            **({"groups": len(rows), "privacy": privacy} if privacy is not None else {}),
        },
    )
    _keep_decision(
        session,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        allow=True,
        policy_input=the_input,
        result=result,
        version=version,
        rows=out.source_rows,
        entry=entry,
    )
    return ExchangeResult(
        exchange_id=decision_id,
        contract_id=contract.id,
        purpose=request.purpose,
        fields=delivered_fields,
        masked=entry.data["masked"],
        row_count=len(rows) if out.file is None else out.source_rows,
        rows=rows,
        watermark=mark,
        content_hash=digest,
        receipt=Receipt(
            seq=entry.seq,
            hash=entry.hash,
            sig=entry.sig,
            kid=entry.kid,
            body=entry.body,
            url=f"/ledger/receipts/{entry.seq}",
        ),
        delivery=request.delivery,
        file=out.file,
        privacy=privacy,
    )
