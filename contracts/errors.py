"""Errors raised by the contract model: each message says what was expected and what was found."""


class ContractError(Exception):
    """Base class for every error about a usage contract."""


class InvalidTransition(ContractError):
    """A negotiation or life-cycle step that the contract's current state does not allow."""

    def __init__(self, current: str, target: str, allowed: list[str]) -> None:
        self.current = str(current)
        self.target = str(target)
        self.allowed = list(allowed)
        if self.allowed:
            expected = "allowed next states: " + ", ".join(self.allowed)
        else:
            expected = f"{self.current} is terminal: no next state is allowed"
        super().__init__(
            f"contract in state {self.current} cannot move to {self.target}; {expected}"
        )


class ContractSignatureError(ContractError):
    """A contract signature (compact JWS) that is malformed, misdirected or does not verify."""
