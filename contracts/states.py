"""Negotiation and life-cycle states of a usage contract.

The negotiation states and their order are the Dataspace Protocol's contract negotiation states
(REQUESTED, OFFERED, ACCEPTED, AGREED, VERIFIED, FINALIZED, TERMINATED). After FINALIZED the
gateway adds what a running contract needs: SUSPENDED (paused, may resume), REVOKED (withdrawn by
the provider or holder), EXPIRED (its term ran out). TERMINATED, REVOKED and EXPIRED are terminal.
"""

from enum import StrEnum

from contracts.errors import InvalidTransition


class ContractState(StrEnum):
    REQUESTED = "REQUESTED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    AGREED = "AGREED"
    VERIFIED = "VERIFIED"
    FINALIZED = "FINALIZED"
    TERMINATED = "TERMINATED"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


_S = ContractState

TRANSITIONS: dict[ContractState, frozenset[ContractState]] = {
    _S.REQUESTED: frozenset({_S.OFFERED, _S.AGREED, _S.TERMINATED}),
    _S.OFFERED: frozenset({_S.REQUESTED, _S.ACCEPTED, _S.TERMINATED}),
    _S.ACCEPTED: frozenset({_S.AGREED, _S.TERMINATED}),
    _S.AGREED: frozenset({_S.VERIFIED, _S.TERMINATED}),
    _S.VERIFIED: frozenset({_S.FINALIZED, _S.TERMINATED}),
    _S.FINALIZED: frozenset({_S.SUSPENDED, _S.REVOKED, _S.TERMINATED, _S.EXPIRED}),
    _S.SUSPENDED: frozenset({_S.FINALIZED, _S.REVOKED, _S.TERMINATED, _S.EXPIRED}),
    _S.TERMINATED: frozenset(),
    _S.REVOKED: frozenset(),
    _S.EXPIRED: frozenset(),
}

TERMINAL_STATES: frozenset[ContractState] = frozenset(
    s for s, nxt in TRANSITIONS.items() if not nxt
)


def _state(value: str) -> ContractState | None:
    try:
        return ContractState(value)
    except ValueError:
        return None


def allowed_next(state: str) -> list[str]:
    """Return the states a contract in `state` may move to, sorted; [] for a terminal state."""
    current = _state(state)
    if current is None:
        raise InvalidTransition(f"unknown state {state!r}", "any state", [])
    return sorted(str(s) for s in TRANSITIONS[current])


def is_terminal(state: str) -> bool:
    """Return True when a contract in `state` can never change again."""
    return not allowed_next(state)


def check_transition(current: str, target: str) -> None:
    """Return None when `current` may move to `target`; raise InvalidTransition otherwise."""
    allowed = allowed_next(current)
    if str(target) not in allowed:
        shown = str(target) if _state(target) is not None else f"unknown state {target!r}"
        raise InvalidTransition(str(current), shown, allowed)
