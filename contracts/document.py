"""The canonical contract document both parties sign, its RFC 8785 (JCS) bytes and its hash."""

import hashlib
from datetime import UTC, datetime
from typing import Any

import rfc8785

from contracts.errors import ContractError
from contracts.offer import Offer

DOCUMENT_TYPE = "dsgw:UsageContract"
DOCUMENT_VERSION = 1


def rfc3339(moment: datetime) -> str:
    """Return a timezone-aware datetime as RFC 3339 UTC with microseconds and 'Z'."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ContractError(f"expected a timezone-aware datetime, found naive {moment.isoformat()}")
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def _require_ids(**ids: str) -> None:
    for name, value in ids.items():
        if not isinstance(value, str) or not value.strip():
            raise ContractError(f"expected {name} to be a non-empty string, found {value!r}")


def contract_document(
    *,
    contract_id: str,
    offer_id: str,
    offer: Offer,
    product_id: str,
    provider: str,
    consumer: str,
    purpose: str,
    not_before: datetime,
    not_after: datetime,
    gateway: str,
) -> dict[str, Any]:
    """Return the contract content both parties sign: parties, purpose, period and offer terms."""
    _require_ids(
        contract_id=contract_id,
        offer_id=offer_id,
        product_id=product_id,
        provider=provider,
        consumer=consumer,
        gateway=gateway,
    )
    if purpose not in offer.purposes:
        raise ContractError(
            f"expected a purpose the offer names {offer.purposes}, found {purpose!r}"
        )
    start, end = rfc3339(not_before), rfc3339(not_after)
    if not_after <= not_before:
        raise ContractError(f"expected not_after later than not_before {start}, found {end}")
    terms = offer.model_dump(mode="json")
    if terms.get("compute") is None:  # no compute terms: the document is signed as before them
        terms.pop("compute", None)
    if terms.get("price") is None:  # no usage prices: likewise signed as before them
        terms.pop("price", None)
    if not_after - not_before > offer.term:
        raise ContractError(
            f"expected a period no longer than the offer's term {terms['term']}, "
            f"found {start} to {end}"
        )
    return {
        "type": DOCUMENT_TYPE,
        "version": DOCUMENT_VERSION,
        "contract_id": contract_id,
        "offer_id": offer_id,
        "product_id": product_id,
        "provider": provider,
        "consumer": consumer,
        "gateway": gateway,
        "purpose": purpose,
        "not_before": start,
        "not_after": end,
        "quotas": {"rows": offer.quota_rows, "calls": offer.quota_calls},
        "fields": terms["fields"],
        "region": offer.region,
        "onward_transfer": offer.onward_transfer,
        "price_fen": offer.price_fen,
        "lawful_basis": (
            {"basis": offer.lawful_basis, "fields": terms["lawful_basis_fields"]}
            if offer.lawful_basis_fields
            else None
        ),
        "offer": terms,
    }


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 bytes of a JSON document."""
    try:
        return rfc8785.dumps(doc)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ContractError(f"expected a JSON document that JCS can canonicalise: {exc}") from exc


def contract_hash(doc: dict[str, Any]) -> str:
    """Return the lowercase hex SHA-256 of the document's canonical bytes."""
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()
