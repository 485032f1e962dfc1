"""The price of an offer as the policy judges it at the moment of use (specs/settlement.md)."""

from typing import Any

from sqlalchemy.orm import object_session

from contracts import Offer
from gateway.authorisations.models import Authorisation
from gateway.products.models import Product


def policy_price(product: Product, offer: Offer) -> dict[str, Any]:
    """Return `contract.price` of the policy input: every rate the offer states (its flat price
    first) and the fee cap of the product's authorisation as it stands now (null when it cannot
    be read: the policy then refuses any price but free)."""
    session = object_session(product)
    authorisation = (
        session.get(Authorisation, product.authorisation_id) if session is not None else None
    )
    return {
        "rates_fen": offer.rates(),
        "fee_cap_fen": authorisation.fee_cap_fen if authorisation is not None else None,
    }
