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
from gateway.compute.rules import touched_fields
from gateway.dataplane.errors import DataPlaneError
from gateway.exchanges.obligations import Delivery, field_kind, mask_value
from gateway.resources import data as resource_data

__all__ = ["Refused", "policy_input", "release", "touched_fields"]


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
