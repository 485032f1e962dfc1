"""The policy decision point: OPA, asked through opa-python-client; any doubt is a denial."""

import hashlib
import json
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from opa_client.opa import OpaClient
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from gateway.core import metrics
from gateway.policy.transport import KeepAliveSession
from gateway.policy.versions import bundle_version_from_digests

PACKAGE = "dsgw.exchange"
RULE = "decision"
log = structlog.get_logger("gateway.policy")


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
    model_config = ConfigDict(extra="allow", strict=True)
    code: str
    title: str
    detail: str = ""


class PolicyDecision(BaseModel):
    """The decision document every policy evaluation must return.

    Strict: OPA speaks JSON, so nothing is coerced (a `"yes"` is not an allow).
    """

    model_config = ConfigDict(extra="allow", strict=True)
    allow: bool
    reasons: list[_Reason]
    obligations: dict[str, Any]

    @model_validator(mode="after")
    def _allow_means_no_reasons(self) -> "PolicyDecision":
        if self.allow and self.reasons:
            raise ValueError("allow is true but the decision gives reasons to refuse")
        return self


def _module_name(module_id: str) -> str:
    """Return a module's id without the machine's path: from `policies/` on, when it has one."""
    marker = "/policies/"
    if marker in module_id:
        return "policies/" + module_id.rsplit(marker, 1)[1]
    return module_id


class _OpaClient(OpaClient):
    """opa-python-client over the lean keep-alive transport (gateway/policy/transport.py)."""

    def _init_session(self) -> KeepAliveSession:
        return KeepAliveSession(
            self.host, self.port, ssl=self.ssl, timeout=self.timeout, headers=self.headers
        )

    @property
    def transport(self) -> KeepAliveSession:
        return self._session


# A module of OPA's listing begins so; the same keys in the same order are no other object of it.
_MODULE_START = re.compile(r'\{"id":(?=")')
_DECODER = json.JSONDecoder()


def listed_modules(body: bytes) -> dict[str, str]:
    """Return {id: text} of the modules of a `GET /v1/policies` reply, reading only those.

    Each module is written `{"id":"…","raw":"…","ast":{…}}` (OPA's struct order); a quote
    inside a string is always escaped, and no object of a syntax tree has a "raw" key (some
    begin with "id"), so the scan takes a module only where an object begins with those three
    keys, and decodes two strings there (tests/e2e/test_policy_versions.py checks the premise
    against the real OPA). A reply of any other shape is
    decoded in full. Raises ValueError (or KeyError, TypeError) when it is not a listing.
    """
    text = body.decode("utf-8")
    found: dict[str, str] = {}
    if text.startswith('{"result":['):
        for match in _MODULE_START.finditer(text):
            ident, at = _DECODER.raw_decode(text, match.end())
            if not text.startswith(',"raw":"', at):
                continue  # an object of a syntax tree that begins with "id"
            raw, at = _DECODER.raw_decode(text, at + 7)
            if text.startswith(',"ast":', at):
                found[ident] = raw
    if found or text.startswith('{"result":[]'):
        return found
    return {m["id"]: m["raw"] for m in json.loads(text)["result"]}


class PolicyClient:
    """Asks OPA for exchange decisions."""

    def __init__(self, url: str, *, timeout: float, version_ttl: float = 1.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OPA URL must be http(s)://host:port, got {url!r}")
        self.url = url
        self._client = _OpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            timeout=timeout,
            retries=0,
        )
        self.timeout = timeout
        self.version_ttl = version_ttl
        self._version_lock = threading.Lock()
        self._version: str | None = None
        self._modules: dict[str, str] = {}
        self._version_at = float("-inf")
        self._polled = False  # whether `version` has asked OPA at least once
        # The version this process last saw recorded on the ledger; reset at every refresh, so
        # the ledger is consulted at most once per `version_ttl`.
        self.recorded_version: str | None = None

    def decide(self, policy_input: dict[str, Any], package: str = PACKAGE) -> PolicyDecision:
        """Return OPA's decision for `policy_input`, else raise a PolicyError saying why; each
        decision is timed, each failure counted and logged at error level with its reason."""
        started = time.perf_counter()
        try:
            return self._decide(policy_input, package)
        except PolicyError as exc:
            metrics.policy_error(exc.code)
            log.error("policy decision failed", code=exc.code, reason=str(exc), opa=self.url)
            raise
        finally:
            metrics.observe_decision(time.perf_counter() - started)

    def _decide(self, policy_input: dict[str, Any], package: str = PACKAGE) -> PolicyDecision:
        try:
            answer = self._client.query_rule(
                input_data=policy_input, package_path=package, rule_name=RULE
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise PolicyUnavailable(
                f"OPA at {self.url} did not answer ({type(exc).__name__}): {exc}"
            ) from exc
        except requests.HTTPError as exc:
            raise PolicyUnavailable(f"OPA at {self.url} failed: {exc}") from exc
        except (requests.RequestException, ValueError) as exc:
            raise PolicyUnavailable(f"OPA at {self.url} gave no readable answer: {exc}") from exc
        if not isinstance(answer, dict) or "result" not in answer:
            raise PolicyUndefined(f"the policy {package}.{RULE} is undefined for this input")
        try:
            return PolicyDecision.model_validate(answer["result"])
        except ValidationError as exc:
            raise PolicyUndefined(f"the policy returned a malformed decision: {exc}") from exc

    def served_modules(self) -> dict[str, str]:
        """Return {module id: SHA-256 of its text} for every module OPA serves, or raise.

        The listing carries every module's syntax tree (about 1 MB of JSON: some 150 ms of
        decoding with the GIL held, which every request thread would wait out), in an order
        that changes from one listing to the next; only each module's id and text are read
        (`listed_modules`), the trees are skipped."""
        try:
            response = self._client.transport.get(f"{self.url}/v1/policies", timeout=self.timeout)
            response.raise_for_status()
            listed = listed_modules(response.content)
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise PolicyUnavailable(f"OPA at {self.url} did not list its policies: {exc}") from exc
        return {
            _module_name(ident): hashlib.sha256(raw.encode("utf-8")).hexdigest()
            for ident, raw in listed.items()
        }

    def version(self, *, max_age: float | None = None) -> tuple[str | None, dict[str, str]]:
        """Return the bundle version OPA serves and its modules, re-read at most every TTL.

        (None, {}) when OPA cannot be asked; a decision then carries no version. The listing
        is read without holding the lock, so `cached_version` never waits for it.
        """
        ttl = self.version_ttl if max_age is None else max_age
        with self._version_lock:
            if time.monotonic() - self._version_at < ttl and self._version is not None:
                return self._version, self._modules
            self._polled = True
        try:
            modules = self.served_modules()
        except PolicyUnavailable:
            with self._version_lock:
                self._version, self._modules, self._version_at = None, {}, float("-inf")
            return None, {}
        version = bundle_version_from_digests(modules.values())
        with self._version_lock:
            if version != self._version:
                self.recorded_version = None  # a new version: the ledger is consulted once
            self._version, self._modules = version, modules
            self._version_at = time.monotonic()
            return self._version, self._modules

    def cached_version(self) -> tuple[str | None, dict[str, str]]:
        """Return the version last read (by `version`, which the watcher calls off the request
        path: gateway/policy/watch.py), reading it now only if it was never read."""
        with self._version_lock:
            if self._polled:
                return self._version, self._modules
        return self.version()

    def healthy(self) -> bool:
        """Return whether OPA reports itself healthy."""
        return self._client.check_health()

    def close(self) -> None:
        self._client.close_connection()
