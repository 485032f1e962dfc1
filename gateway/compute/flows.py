"""Compute delivery inside an exchange: the policy's view of the query and its budget, and the
release that spends ε in the exchange's own transaction (specs/compute.md).

Called from gateway/exchanges/flows.py, which records the ledger entry and commits: the noisy
answer, the ε it spent and the entry that says so become durable together, or not at all.
"""

from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from contracts import Offer
from gateway.compute import budget, engine, privacy, rules, service
from gateway.compute.models import Aggregate, BudgetRead
from gateway.compute.rules import touched_fields
from gateway.context import Gateway
from gateway.core.db import fetch
from gateway.core.errors import Problem, conflict
from gateway.dataplane.errors import DataPlaneError
from gateway.exchanges.inputs import policy_input as exchange_input
from gateway.exchanges.models import ExchangeRequest
from gateway.exchanges.obligations import Delivery, field_kind, mask_value
from gateway.negotiation import service as contracts
from gateway.participants.models import Participant
from gateway.policy.client import PolicyError
from gateway.products import service as products
from gateway.resources import data as resource_data
from gateway.resources import service as resources

__all__ = ["Refused", "policy_input", "privacy_budget", "release", "touched_fields"]


class Refused(Exception):
    """The release cannot go ahead: a denial with a stable code, recorded like any other."""

    def __init__(self, code: str, title: str, detail: str, status: int = 403):
        super().__init__(detail)
        self.code, self.title, self.status = code, title, status


def policy_input(
    session: Session, *, request: Any, offer: Offer, contract: Any, subject: Any, resource: Any
) -> dict[str, Any]:
    """Return the `compute` member of the policy input: terms, query and ε spent so far."""
    used = budget.spent(
        session,
        contract_id=contract.id,
        subject_id=subject.id,
        resource_id=resource.id,
    )
    terms = offer.compute.model_dump(mode="json") if offer.compute is not None else None
    return {
        "terms": terms,
        "query": rules.query_document(request),
        "spent": {
            "contract": used[budget.CONTRACT],
            "subject_resource": used[budget.SUBJECT_RESOURCE],
        },
    }


def _masker(resource: Any):
    """Return `(field, value) -> masked value`, each field masked in the shape of its kind."""
    kinds = {f["name"]: field_kind(f) for f in resource.fields}
    return lambda name, value: mask_value(value, kinds.get(name, "text"))


def release(
    session: Session,
    gateway: Any,
    *,
    request: Any,
    offer: Offer,
    resource: Any,
    contract: Any,
    subject: Any,
    obligations: dict[str, Any],
    watermark: str | None,
) -> tuple[Delivery, dict[str, Any]]:
    """Compute, add noise, spend ε under both budgets; return the delivery and its account."""
    dp = obligations["dp"]
    epsilon = float(dp["epsilon_per_query"])
    try:
        plan = rules.plan(offer.compute, request)
        keys = {name for name, _ in plan.keys} | {n for n, kind, _ in plan.filters if kind == "eq"}
        needed = service.columns_needed(plan)
        # Only the columns the plan reads leave the source, as Arrow, straight to DuckDB.
        read = needed or [resource.fields[0]["name"]]  # a count alone still needs the rows
        stream = resource_data.open_rows(session, gateway, resource, columns=read)
        table = engine.table_from_stream(stream, needed, text=frozenset(keys))
    except rules.NotDeclared as exc:
        raise Refused("COMPUTE_NOT_DECLARED", "Compute not declared", str(exc)) from None
    except (DataPlaneError, pa.ArrowException, OSError) as exc:
        detail = exc.detail if isinstance(exc, DataPlaneError) else type(exc).__name__
        raise Refused(
            "SOURCE_UNAVAILABLE",
            "Data source unavailable",
            f"the data of resource {resource.id} could not be read: {detail}",
            status=502,
        ) from None
    try:
        out = service.release(
            table,
            terms=offer.compute,
            request=request,
            epsilon=epsilon,
            min_group_size=int(obligations["min_group_size"]),
            mask=set(obligations.get("mask") or []),
            mask_value=_masker(resource),
            watermark=watermark,
        )
    except rules.NotDeclared as exc:
        raise Refused("COMPUTE_NOT_DECLARED", "Compute not declared", str(exc)) from None
    except (engine.ComputeFailed, privacy.PrivacyError) as exc:
        raise Refused("COMPUTE_FAILED", "Compute failed", str(exc), status=503) from None
    try:
        accounts = budget.claim(
            session,
            contract_id=contract.id,
            subject_id=subject.id,
            resource_id=resource.id,
            epsilon=epsilon,
            budget_contract=float(dp["budget_contract"]),
            budget_subject_resource=float(dp["budget_subject_resource"]),
        )
    except budget.BudgetExhausted as exc:
        raise Refused("PRIVACY_BUDGET_EXHAUSTED", "Privacy budget exhausted", str(exc)) from None
    account = {
        "epsilon_spent": epsilon,
        "epsilon_per_query": epsilon,
        "contract": accounts[budget.CONTRACT].as_dict(),
        "subject_resource": accounts[budget.SUBJECT_RESOURCE].as_dict(),
        "min_group_size": out.min_group_size,
        "noise": out.noise,
    }
    # Compute is metered by calls and ε, never by rows: a row count would tell how many rows a
    # filter matched, exactly (specs/compute.md).
    return Delivery(out.columns, out.rows, 0, out.content_hash), account


def _unavailable(detail: str) -> Problem:
    return Problem(503, "policy-unavailable", "Policy engine unavailable", detail)


def _dp(obligations: dict[str, Any]) -> dict[str, float]:
    """Return the decision's `dp` obligation as numbers, else raise (fail closed)."""
    dp = obligations.get("dp")
    names = ("epsilon_per_query", "budget_contract", "budget_subject_resource")
    if not isinstance(dp, dict) or not all(
        isinstance(dp.get(n), int | float) and not isinstance(dp.get(n), bool) and dp[n] >= 0
        for n in names
    ):
        raise _unavailable(f"the policy set no privacy budget for this contract (dp: {dp!r})")
    return {n: float(dp[n]) for n in names}


def privacy_budget(
    session: Session, gateway: Gateway, *, contract_id: str, viewer: Participant
) -> BudgetRead:
    """Return the privacy budget of a compute contract before (or between) its queries.

    The budgets are the exchange decision's own `obligations.dp`: OPA is asked about the input
    a compute exchange of this contract's consumer would send (the same builder), for a query
    reading every column the terms let a query read, so the figures are those of the strictest
    declared query (a query reading less may fall in a laxer tier; its reply says so). Nothing
    is recorded or spent: this is a reading, not an exchange. 404 to whoever may not read the
    contract; 409 `no-compute-terms` when its offer declares none; 503 when OPA cannot answer.
    """
    contract = contracts.get(session, contract_id, viewer=viewer)
    _, offer = products.get_offer(session, contract.offer_id)
    if offer.compute is None:
        raise conflict(
            "no-compute-terms",
            "No compute terms",
            f"the offer of contract {contract.id} declares no compute terms: it has no privacy "
            "budget",
        )
    product = products.get(session, contract.product_id)
    resource = resources.get(session, product.resource_id)
    consumer = fetch(session, Participant, contract.consumer_id, kind="participant")
    known = {f["name"] for f in resource.fields}
    fields = [name for name in rules.readable_columns(offer.compute) if name in known]
    request = ExchangeRequest(
        contract_id=contract.id,
        purpose=contract.purpose,
        delivery="compute",
        aggregates=[Aggregate(op="count")],
    )
    the_input = exchange_input(
        subject=consumer,
        request=request,
        fields=fields,
        resource=resource,
        product=product,
        contract=contract,
        offer=offer,
    )
    the_input["compute"] = policy_input(
        session, request=request, offer=offer, contract=contract, subject=consumer,
        resource=resource,
    )  # fmt: skip
    try:
        decision = gateway.policy.decide(the_input)
    except PolicyError as exc:
        raise _unavailable(str(exc)) from None
    # Read whether or not the query would be allowed: a spent budget is still a budget.
    dp = _dp(decision.obligations)
    spent = the_input["compute"]["spent"]
    scopes = {
        "contract": budget.Account(spent["contract"], dp["budget_contract"]),
        "subject_resource": budget.Account(
            spent["subject_resource"], dp["budget_subject_resource"]
        ),
    }
    need = budget.micro(dp["epsilon_per_query"])
    left = min(budget.micro(a.remaining) for a in scopes.values())
    return BudgetRead(
        contract_id=contract.id,
        consumer_id=consumer.id,
        resource_id=resource.id,
        epsilon_per_query=dp["epsilon_per_query"],
        contract=scopes["contract"].as_dict(),
        subject_resource=scopes["subject_resource"].as_dict(),
        queries_left=left // need if need > 0 else 0,
        fields=fields,
    )
