"""The listing states of a data product and who may move it (specs/lifecycles-products.md).

draft → review (合规评估, compliance review) → listed → suspended → delisted. The merchant submits
a draft for review; the platform admin lists it or rejects it back to draft; the admin (or the
gateway itself, when an authorisation ends) suspends a listed product and the admin reinstates
it; the merchant or the admin delists it. Delisted is terminal: no new contracts, all evidence kept.
"""

from enum import StrEnum

from gateway.core.states import StateMachine


class ProductState(StrEnum):
    DRAFT = "draft"
    REVIEW = "review"
    LISTED = "listed"
    SUSPENDED = "suspended"
    DELISTED = "delisted"


MACHINE = StateMachine(
    "product",
    {
        "draft": {"submit": "review", "delist": "delisted"},
        "review": {"list": "listed", "reject": "draft", "delist": "delisted"},
        "listed": {"suspend": "suspended", "delist": "delisted"},
        "suspended": {"reinstate": "listed", "delist": "delisted"},
    },
)
ENTRY_TYPES = {
    "submit": "product.submitted",
    "list": "product.listed",
    "reject": "product.rejected",
    "suspend": "product.suspended",
    "reinstate": "product.reinstated",
    "delist": "product.delisted",
}


def allowed_next(state: str) -> list[str]:
    """Return the states a product in `state` may move to, sorted; [] when delisted."""
    return MACHINE.allowed_next(state)


def allowed_actions(state: str) -> list[str]:
    """Return the actions that apply to a product in `state`, sorted."""
    return MACHINE.actions(state)


def check(product_id: str, state: str, action: str) -> tuple[ProductState, str]:
    """Return (target state, ledger type) of `action`, or raise the 409 naming the allowed moves."""
    return ProductState(MACHINE.advance(product_id, state, action)), ENTRY_TYPES[action]
