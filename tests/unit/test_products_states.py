"""The product state table: what each state allows, and the 409 that names it."""

import pytest

from gateway.core.errors import Problem
from gateway.products.states import ProductState, allowed_actions, allowed_next, check


def test_each_state_allows_exactly_its_documented_next_states():
    assert allowed_next("draft") == ["delisted", "review"]
    assert allowed_next("review") == ["delisted", "draft", "listed"]
    assert allowed_next("listed") == ["delisted", "suspended"]
    assert allowed_next("suspended") == ["delisted", "listed"]
    assert allowed_next("delisted") == []


def test_check_returns_the_target_and_ledger_type():
    assert check("prd_1", "review", "list") == (ProductState.LISTED, "product.listed")
    assert check("prd_1", "review", "reject") == (ProductState.DRAFT, "product.rejected")


@pytest.mark.parametrize(
    ("state", "action"),
    [("draft", "list"), ("listed", "submit"), ("suspended", "suspend"), ("delisted", "reinstate")],
)
def test_a_move_the_state_does_not_allow_is_a_409_naming_the_state(state, action):
    with pytest.raises(Problem) as raised:
        check("prd_1", state, action)
    problem = raised.value
    assert problem.status == 409 and problem.slug == "invalid-transition"
    assert problem.extensions["current_state"] == state
    assert problem.extensions["allowed_next_states"] == allowed_next(state)
    assert problem.extensions["allowed_actions"] == allowed_actions(state)
