"""The policy input of an exchange (specs/policy-input.md): one builder for every path that
asks the exchange decision, the exchange itself, transfers, and the privacy budget read before a
compute query (gateway/compute/flows.py), so that each asks OPA about the same document."""

from typing import Any

from contracts import Offer
from gateway.core import clock
from gateway.exchanges.models import ExchangeRequest, OpenExchangeRequest
from gateway.negotiation.models import Contract
from gateway.participants.models import Participant
from gateway.policy import grading
from gateway.products.models import Product
from gateway.resources.models import Resource
from gateway.settlement.pricing import policy_price


def policy_input(
    *,
    subject: Participant,
    request: ExchangeRequest | OpenExchangeRequest,
    fields: list[str],
    resource: Resource,
    product: Product,
    contract: Contract | None,
    offer: Offer | None,
    open_data_usage: dict[str, int] | None = None,
    transfer: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return the OPA input document of an exchange (specs/policy-input.md).

    Without a contract (open data) `contract` is null and `open_data_usage` says what the
    subject already pulled without one today. A transfer (gateway/transfers) adds
    `transfer: {type, format}` and is judged as delivery "file".
    """
    return {
        **({"transfer": transfer} if transfer is not None else {}),
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
        **({"open_data_usage": open_data_usage} if open_data_usage is not None else {}),
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
            # The settlement hook: the price checked at use against the fee cap.
            "price": policy_price(product, offer),
        }
        if contract is not None and offer is not None
        else None,
    }


def _field_input(field: dict[str, Any]) -> dict[str, Any]:
    """Return a resource field as the policy sees it: the flags it states (null: not stated,
    inherited from the resource), its kind, its own grade and level when it has them."""
    return grading.field_input(field)
