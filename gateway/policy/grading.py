"""The exposed grade of a product offer, derived by the policy (就高从严), never typed by hand.

The policy computes `exposure` for every exchange from the fields it exposes after masking and
aggregation. A product offer's exposure is the exposure of the exchange its contract would
permit: every field the offer allows, through each delivery mode the product offers, under a
contract with the offer's lawful bases. A product's grade is the highest of its offers'
exposures (就高从严): the products service stores both when the merchant drafts it.
"""

from typing import Any

from contracts import Offer
from gateway.core import clock
from gateway.exchanges.obligations import field_kind
from gateway.policy.client import PolicyClient
from gateway.resources.models import grade_rank


def field_input(field: dict[str, Any]) -> dict[str, Any]:
    """Return a resource field as the policy sees it: the flags it states (null: not stated,
    inherited from the resource), its kind, its own grade and level when it has them."""
    out = {
        "name": field["name"],
        "personal": field.get("personal"),
        "sensitive": field.get("sensitive"),
        "kind": field_kind(field),
    }
    out.update({key: field[key] for key in ("grade", "level") if key in field})
    return out


def offer_input(
    *, resource: Any, product: Any, offer: Offer, delivery: str, now: str | None = None
) -> dict[str, Any]:
    """Return the policy input of a would-be exchange of everything `offer` allows."""
    fields = (
        list(offer.fields) if offer.fields is not None else [f["name"] for f in resource.fields]
    )
    when = now or clock.rfc3339(clock.now())
    return {
        "now": when,
        "action": "exchange",
        "subject": {"id": "prt_catalogue", "roles": ["consumer"], "region": "domestic"},
        "purpose": offer.purposes[0],
        "delivery": delivery,
        "requested_fields": fields,
        "resource": {
            "id": resource.id,
            "grade": resource.grade,
            "level": resource.level,
            "personal_information": resource.personal_information,
            "sensitive_personal_information": resource.sensitive_personal_information,
            "fields": [field_input(f) for f in resource.fields],
        },
        "product": {
            "id": product.id,
            "delivery_modes": list(product.delivery_modes),
            "public_interest": product.public_interest,
        },
        "contract": {
            "id": "ctr_catalogue",
            "state": "FINALIZED",
            "consumer": "prt_catalogue",
            "purposes": list(offer.purposes),
            "not_before": when,
            "not_after": "2262-01-01T00:00:00Z",  # the latest instant time.parse_rfc3339_ns takes
            "quota": {"rows": offer.quota_rows, "calls": offer.quota_calls},
            "usage": {"rows": 0, "calls": 0},
            "fields": list(offer.fields) if offer.fields is not None else None,
            "lawful_basis_fields": list(offer.lawful_basis_fields),
            "holder_approved": True,
            "region": offer.region,
            "price_fen": offer.price_fen,
        },
    }


def offer_exposure(
    client: PolicyClient, *, resource: Any, product: Any, offer: Offer
) -> dict[str, dict[str, Any]]:
    """Return {delivery mode: the policy's exposure} for every mode the product offers."""
    out: dict[str, dict[str, Any]] = {}
    for delivery in product.delivery_modes:
        decision = client.decide(
            offer_input(resource=resource, product=product, offer=offer, delivery=delivery)
        )
        exposure = (decision.model_extra or {}).get("exposure")
        if exposure is None:  # the policy found the input invalid: say why, don't guess
            raise ValueError(f"no exposure for {delivery}: {decision.reasons}")
        out[delivery] = exposure
    return out


def highest(exposures: list[dict[str, Any]]) -> tuple[str, str | None]:
    """Return the highest (grade, level) among exposures: core > important > general L4…L1."""
    top = max(exposures, key=lambda e: grade_rank(e["grade"], e.get("level")))
    return top["grade"], top.get("level")
