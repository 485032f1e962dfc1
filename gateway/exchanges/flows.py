"""The exchange: decide with OPA, apply obligations, deliver, meter, and record the evidence.

The rows leave only in the reply of a transaction that has durably written the ledger entry
describing them; every decision, allowed or denied, is recorded the same way.
"""

from typing import Any

from sqlalchemy.orm import Session

from contracts import Offer
from gateway.authorisations import service as authorisations
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem, unprocessable
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
    unavailable = status == 503
    return Problem(
        status,
        "policy-unavailable" if unavailable else "policy-denied",
        "Policy engine unavailable" if unavailable else "Denied by policy",
        "; ".join(r.get("detail") or r["title"] for r in reasons) or first["title"],
        reasons=reasons,
        decision_id=decision_id,
        ledger_seq=entry.seq,
        policy_version=policy_version,
    )


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


def _check_fields(request: ExchangeRequest, resource: Resource) -> None:
    """Refuse (422) requested or grouped-on fields that the contract's resource does not have."""
    known = {f["name"] for f in resource.fields}
    for what, names in (("fields", request.fields), ("group_by", request.group_by)):
        unknown = [name for name in names or [] if name not in known]
        if unknown:
            raise unprocessable(
                f"{what}: {len(unknown)} name(s) that are not fields of the contract's resource "
                f"(first: {unknown[0]!r}); it has {sorted(known)}"
            )


def exchange(
    session: Session, gateway: Gateway, *, subject: Participant, request: ExchangeRequest
) -> ExchangeResult:
    """Run one exchange; return the delivery with its receipt, or raise the denial's problem."""
    # An authorisation whose term has passed ends at this use, suspending its products (its own
    # transaction and evidence); the policy then sees the product suspended.
    named = contracts.get(session, request.contract_id)
    product = products.get(session, named.product_id)
    resource = resources.get(session, product.resource_id)
    if named.consumer_id == subject.id:  # others learn nothing of the resource: the policy denies
        _check_fields(request, resource)  # before any lock or policy call
    authorisations.expire_if_over(
        session, gateway.signer, authorisations.get(session, product.authorisation_id)
    )
    contract = contracts.get(session, request.contract_id, for_update=True)
    contracts.expire_if_due(session, gateway, contract)  # recorded with this exchange's evidence
    _, offer = products.get_offer(session, contract.offer_id)
    available = offer.fields if offer.fields is not None else [f["name"] for f in resource.fields]
    fields = request.requested(available)
    # Fields grouped on are exposed too: the policy judges them like any requested field.
    fields += [name for name in request.group_by or [] if name not in fields]
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
    out = obl.deliver(
        resource.rows,
        delivery=request.delivery,
        fields=fields,
        group_by=request.group_by,
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
            **(
                {"groups": out.groups, "suppressed_groups": out.suppressed_groups}
                if out.groups is not None
                else {}
            ),
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
        suppressed_groups=out.suppressed_groups,
    )
