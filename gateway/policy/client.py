"""The policy decision point: OPA, asked through opa-python-client; any doubt is a denial."""

from typing import Any
from urllib.parse import urlsplit

import requests
from opa_client.opa import OpaClient
from pydantic import BaseModel, ConfigDict, ValidationError

PACKAGE = "dsgw.exchange"
RULE = "decision"


class PolicyError(Exception):
    """OPA gave no usable decision; `code` is the reason recorded with the denial."""

    code = "POLICY_ERROR"
    status = 503


class PolicyUnavailable(PolicyError):
    """OPA could not be reached or did not answer in time."""

    code = "POLICY_UNAVAILABLE"
    status = 503


class PolicyUndefined(PolicyError):
    """OPA answered, but the decision was undefined or not of the expected shape."""

    code = "POLICY_UNDEFINED"
    status = 403


class _Reason(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    title: str
    detail: str = ""


class PolicyDecision(BaseModel):
    """The decision document every policy evaluation must return."""

    model_config = ConfigDict(extra="allow")
    allow: bool
    reasons: list[_Reason]
    obligations: dict[str, Any]


class PolicyClient:
    """Asks OPA for exchange decisions."""

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OPA URL must be http(s)://host:port, got {url!r}")
        self.url = url
        self._client = OpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            timeout=timeout,
            retries=0,
        )

    def decide(self, policy_input: dict[str, Any]) -> PolicyDecision:
        """Return OPA's decision for `policy_input`, else raise a PolicyError saying why."""
        try:
            answer = self._client.query_rule(
                input_data=policy_input, package_path=PACKAGE, rule_name=RULE
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise PolicyUnavailable(
                f"OPA at {self.url} did not answer: {type(exc).__name__}"
            ) from exc
        except requests.HTTPError as exc:
            raise PolicyUnavailable(f"OPA at {self.url} failed: {exc}") from exc
        except (requests.RequestException, ValueError) as exc:
            raise PolicyUnavailable(f"OPA at {self.url} gave no readable answer: {exc}") from exc
        if not isinstance(answer, dict) or "result" not in answer:
            raise PolicyUndefined(f"the policy {PACKAGE}.{RULE} is undefined for this input")
        try:
            return PolicyDecision.model_validate(answer["result"])
        except ValidationError as exc:
            raise PolicyUndefined(f"the policy returned a malformed decision: {exc}") from exc

    def healthy(self) -> bool:
        """Return whether OPA reports itself healthy."""
        return self._client.check_health()

    def close(self) -> None:
        self._client.close_connection()
