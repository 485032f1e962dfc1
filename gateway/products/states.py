"""The listing states of a data product and who may move it (specs/lifecycles-products.md).

draft → review (合规评估, compliance review) → listed → suspended → delisted. The merchant submits
a draft for review; the platform admin lists it or rejects it back to draft; the admin (or the
gateway itself, when an authorisation ends) suspends a listed product and the admin reinstates
it; the merchant or the admin delists it. Delisted is terminal: no new contracts, all evidence kept.
"""

from enum import StrEnum

from gateway.core.errors import conflict


class ProductState(StrEnum):
    DRAFT = "draft"
    REVIEW = "review"
    LISTED = "listed"
    SUSPENDED = "suspended"
    DELISTED = "delisted"


_S = ProductState

# action → (states it starts from, state it leads to, ledger entry type)
ACTIONS: dict[str, tuple[frozenset[ProductState], ProductState, str]] = {
    "submit": (frozenset({_S.DRAFT}), _S.REVIEW, "product.submitted"),
    "list": (frozenset({_S.REVIEW}), _S.LISTED, "product.listed"),
    "reject": (frozenset({_S.REVIEW}), _S.DRAFT, "product.rejected"),
    "suspend": (frozenset({_S.LISTED}), _S.SUSPENDED, "product.suspended"),
    "reinstate": (frozenset({_S.SUSPENDED}), _S.LISTED, "product.reinstated"),
    "delist": (
        frozenset({_S.DRAFT, _S.REVIEW, _S.LISTED, _S.SUSPENDED}),
        _S.DELISTED,
        "product.delisted",
    ),
}


def allowed_next(state: str) -> list[str]:
    """Return the states a product in `state` may move to, sorted; [] when delisted."""
    return sorted({str(target) for starts, target, _ in ACTIONS.values() if state in starts})


def allowed_actions(state: str) -> list[str]:
    """Return the actions that apply to a product in `state`, sorted."""
    return sorted(action for action, (starts, _, _) in ACTIONS.items() if state in starts)


def check(product_id: str, state: str, action: str) -> tuple[ProductState, str]:
    """Return (target state, ledger type) of `action`, or raise the 409 naming the allowed moves."""
    starts, target, entry_type = ACTIONS[action]
    if state not in starts:
        raise conflict(
            "invalid-transition",
            "Invalid product transition",
            f"product {product_id} is {state}; it cannot {action} (→ {target.value}); "
            f"allowed next states: {', '.join(allowed_next(state)) or 'none'}",
            current_state=state,
            allowed_next_states=allowed_next(state),
            allowed_actions=allowed_actions(state),
        )
    return target, entry_type
