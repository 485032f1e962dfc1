"""Small state machines for the gateway's objects: named actions between named states.

Each object kind (participant, registration, authorisation…) declares its table once; `advance`
returns the next state or raises the 409 problem every invalid transition gets: it names the
object, its current state, the allowed next states and the actions that lead there.
"""

from dataclasses import dataclass

from gateway.core.errors import Problem, conflict


@dataclass(frozen=True)
class StateMachine:
    """The transitions of one kind of object: {state: {action: next_state}}."""

    kind: str
    transitions: dict[str, dict[str, str]]

    def actions(self, state: str) -> list[str]:
        """Return the actions allowed from `state`, sorted."""
        return sorted(self.transitions.get(state, {}))

    def allowed_next(self, state: str) -> list[str]:
        """Return the states reachable in one step from `state`, sorted."""
        return sorted(set(self.transitions.get(state, {}).values()))

    def advance(self, ident: str, state: str, action: str) -> str:
        """Return the state `action` leads to from `state`, else raise a 409 problem."""
        target = self.transitions.get(state, {}).get(action)
        if target is None:
            raise self.invalid(ident, state, action)
        return target

    def invalid(self, ident: str, state: str, action: str) -> Problem:
        """Return the 409 problem for `action` attempted on an object in `state`."""
        allowed = self.actions(state)
        moves = [f"{name} → {self.transitions[state][name]}" for name in allowed]
        then = f"allowed now: {', '.join(moves)}" if moves else "it admits no further action"
        return conflict(
            "invalid-transition",
            f"Invalid {self.kind} transition",
            f"{self.kind} {ident} is {state}; {action!r} is not allowed from there ({then})",
            current_state=state,
            allowed_next_states=self.allowed_next(state),
            allowed_actions=allowed,
        )

    def table(self) -> list[tuple[str, str, str]]:
        """Return every (state, action, next state), for documentation and tests."""
        return [
            (state, action, target)
            for state, actions in self.transitions.items()
            for action, target in actions.items()
        ]
