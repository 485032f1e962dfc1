"""Contract negotiation and life-cycle states: Dataspace Protocol names plus the running states."""

import ast
from pathlib import Path

import pytest

from contracts import (
    TERMINAL_STATES,
    TRANSITIONS,
    ContractError,
    ContractState,
    InvalidTransition,
    allowed_next,
    check_transition,
    is_terminal,
)

S = ContractState

EXPECTED = {
    S.REQUESTED: {S.OFFERED, S.AGREED, S.TERMINATED},
    S.OFFERED: {S.REQUESTED, S.ACCEPTED, S.TERMINATED},
    S.ACCEPTED: {S.AGREED, S.TERMINATED},
    S.AGREED: {S.VERIFIED, S.TERMINATED},
    S.VERIFIED: {S.FINALIZED, S.TERMINATED},
    S.FINALIZED: {S.SUSPENDED, S.REVOKED, S.TERMINATED, S.EXPIRED},
    S.SUSPENDED: {S.FINALIZED, S.REVOKED, S.TERMINATED, S.EXPIRED},
    S.TERMINATED: set(),
    S.REVOKED: set(),
    S.EXPIRED: set(),
}

ALLOWED = [(a, b) for a, nexts in EXPECTED.items() for b in sorted(nexts)]
FORBIDDEN = [(a, b) for a in S for b in S if b not in EXPECTED[a]]


def test_state_values_are_the_dataspace_protocol_names():
    assert [s.value for s in S] == [
        "REQUESTED",
        "OFFERED",
        "ACCEPTED",
        "AGREED",
        "VERIFIED",
        "FINALIZED",
        "TERMINATED",
        "SUSPENDED",
        "REVOKED",
        "EXPIRED",
    ]


def test_transition_table_is_exactly_the_negotiation_and_life_cycle():
    assert {state: set(nexts) for state, nexts in TRANSITIONS.items()} == EXPECTED
    assert all(isinstance(nexts, frozenset) for nexts in TRANSITIONS.values())


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_every_allowed_transition_passes(current, target):
    assert check_transition(current, target) is None
    assert check_transition(current.value, target.value) is None


@pytest.mark.parametrize(("current", "target"), FORBIDDEN)
def test_every_forbidden_transition_names_current_and_allowed_states(current, target):
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current, target)
    message = str(caught.value)
    assert f"state {current.value} cannot move to {target.value}" in message
    for allowed in EXPECTED[current]:
        assert allowed.value in message
    assert caught.value.current == current.value
    assert caught.value.target == target.value
    assert caught.value.allowed == sorted(s.value for s in EXPECTED[current])


@pytest.mark.parametrize("state", [S.TERMINATED, S.REVOKED, S.EXPIRED])
def test_terminal_states_have_no_exits(state):
    assert allowed_next(state) == []
    assert is_terminal(state)
    assert state in TERMINAL_STATES
    with pytest.raises(InvalidTransition, match=f"{state.value} is terminal"):
        check_transition(state, S.FINALIZED)


def test_only_terminated_revoked_and_expired_are_terminal():
    assert TERMINAL_STATES == {S.TERMINATED, S.REVOKED, S.EXPIRED}
    assert not is_terminal(S.SUSPENDED)


def test_allowed_next_is_sorted_strings():
    assert allowed_next(S.FINALIZED) == ["EXPIRED", "REVOKED", "SUSPENDED", "TERMINATED"]
    assert allowed_next("REQUESTED") == ["AGREED", "OFFERED", "TERMINATED"]
    assert all(type(s) is str for s in allowed_next(S.OFFERED))


def test_unknown_states_are_refused_as_invalid_transitions():
    with pytest.raises(InvalidTransition, match="unknown state 'PENDING'"):
        check_transition("PENDING", "AGREED")
    with pytest.raises(InvalidTransition, match="unknown state 'DONE'.*OFFERED"):
        check_transition("REQUESTED", "DONE")
    with pytest.raises(InvalidTransition, match="unknown state 'requested'"):
        allowed_next("requested")


def test_invalid_transition_is_a_contract_error():
    assert issubclass(InvalidTransition, ContractError)


def test_contracts_package_never_imports_gateway_and_of_the_ledger_only_its_key_check():
    package = Path(__file__).resolve().parents[2] / "contracts"
    imported = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                imported.update((source.name, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add((source.name, node.module))
    assert {(f, m) for f, m in imported if m.split(".")[0] == "gateway"} == set()
    # One Ed25519 public-key check for every key that enters (issue 14, item 1): the ledger's.
    from_ledger = {m for _, m in imported if m.split(".")[0] == "ledger"}
    assert from_ledger <= {"ledger.keys", "ledger.errors", "ledger.ed25519"}
    assert ("signing.py", "jwt") in imported  # the walk does see the package's imports
