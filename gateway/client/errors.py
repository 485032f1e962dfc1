"""What can go wrong for a client, as exceptions it can catch: one base, `ClientError`.

`GatewayProblem` is the gateway's RFC 9457 problem+json (its `type`, `title`, `status`, `detail`
and every other member in `problem`); `GatewayUnreachable` is a gateway that could not be asked;
`VerificationFailed` is data or evidence that does not check out (the digest of a download, a
receipt), naming the check, what was expected and what was found.
"""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ClientError(Exception):
    """Anything the client could not do; str() says what, for a person to read."""


class GatewayProblem(ClientError):
    """The gateway answered with a problem (RFC 9457): `type`, `title`, `status`, `detail`."""

    def __init__(
        self, *, type: str, title: str, status: int, detail: str, problem: dict[str, Any]
    ) -> None:
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.problem = problem
        """The whole problem object: `reasons`, `current_state`, `allowed_next_states`, …"""
        super().__init__(self.message())

    @classmethod
    def from_response(cls, response: httpx.Response) -> GatewayProblem:
        """Return the problem of an error response (a body that is no problem gets a stand-in
        of type `about:blank`, as RFC 9457 §4.2 has it, with the start of the body as detail)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"detail": response.text[:200].strip()}
        status = body.get("status")
        return cls(
            type=str(body.get("type") or "about:blank"),
            title=str(body.get("title") or response.reason_phrase or ""),
            status=status if isinstance(status, int) else response.status_code,
            detail=str(body.get("detail") or body.get("error_description") or ""),
            problem=body,
        )

    def message(self) -> str:
        """Return one line a person reads: status, type, title, detail, and what the problem
        adds (the states allowed from here, the policy's reasons)."""
        line = f"HTTP {self.status} {self.type}: {self.title}"
        if self.detail and self.detail != self.title:
            line += f": {self.detail}"
        extra = self.problem
        if "allowed_next_states" in extra:
            allowed = ", ".join(map(str, extra.get("allowed_next_states") or [])) or "none"
            line += f" (current state {extra.get('current_state')}; allowed next states: "
            line += f"{allowed})"
        reasons = extra.get("reasons")
        if isinstance(reasons, list) and reasons:
            codes = [str(r.get("code")) for r in reasons if isinstance(r, dict)]
            line += f" [reasons: {', '.join(codes)}]"
        return line


class GatewayUnreachable(ClientError):
    """The gateway could not be reached (refused, timed out, not a dsgw gateway)."""


class VerificationFailed(ClientError):
    """A check of data or evidence failed: `check` names it, with `expected` and `found`."""

    def __init__(self, check: str, *, expected: object, found: object, what: str = "") -> None:
        self.check = check
        self.expected = str(expected)
        self.found = str(found)
        prefix = f"{what}: " if what else ""
        super().__init__(
            f"{prefix}check '{check}' failed: expected {self.expected}, found {self.found}"
        )
