"""`Client`: a participant's own code talking to a dsgw gateway over HTTP.

    from gateway.client import Client

    gw = Client("https://dsgw.example.gov.cn", "prt_…", "consumer.jwk")
    contract = gw.request_contract("off_…", purpose="credit-risk-assessment")
    gw.sign(contract["id"])                        # the consumer's JWS, once the provider agreed
    pulled = gw.pull(contract["id"], "residents.csv", format="text/csv")
    print(pulled.rows, pulled.bytes, pulled.sha256, pulled.receipt.seq)

Every call signs in with `private_key_jwt` (the token is cached until shortly before it expires),
raises `GatewayProblem` for the gateway's problem+json, and `VerificationFailed` when data or
evidence does not check out. It needs only `contracts`, `ledger`, httpx, cryptography and pyjwt
(specs/client.md).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from contracts import sign_contract
from gateway.client.auth import KeyLike, TokenSource, load_key
from gateway.client.errors import GatewayProblem, GatewayUnreachable, VerificationFailed
from ledger.errors import LedgerKeyError
from ledger.keys import jwk_thumbprint, public_key_from_jwk
from ledger.receipt import ReceiptError, ReceiptReport, build_receipt, check_receipt

FORMATS = {
    "jsonl": "application/jsonl",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
"""The data formats of a transfer, by short name (the media types are taken as they are too)."""
CHUNK_BYTES = 1 << 16
LEDGER_PAGE = 1000  # GET /ledger/entries' largest page
COMPLETION_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class PullResult:
    """A pull written to `path`: its transfer, rows, bytes, the SHA-256 of exactly the bytes
    received (equal to the transfer's record) and the receipt checked offline."""

    transfer_id: str
    contract_id: str
    path: Path
    rows: int
    bytes: int
    sha256: str
    receipt: ReceiptReport
    transfer: dict[str, Any]


def public_keys(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """Return {kid: public key} of a JWKS (the gateway's, from GET /ledger/keys)."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise VerificationFailed("keys", expected="a JWKS {keys: [...]}", found=type(jwks).__name__)
    try:
        return {jwk_thumbprint(k): public_key_from_jwk(k) for k in keys}
    except (LedgerKeyError, TypeError, ValueError, KeyError) as exc:
        raise VerificationFailed("keys", expected="Ed25519 JWKs", found=exc) from None


def names(value: Any, ident: str) -> bool:
    """Return whether `ident` appears as a string anywhere in `value` (an entry's data)."""
    if isinstance(value, str):
        return value == ident
    if isinstance(value, dict):
        return any(names(v, ident) for v in value.values())
    if isinstance(value, list):
        return any(names(v, ident) for v in value)
    return False


class Client:
    """One participant at one gateway: `Client(base_url, participant_id, key)`.

    `key` is the participant's private Ed25519 JWK: a file path, the JWK itself, or a loaded key.
    `http` hands in an httpx.Client of one's own (its base URL is the gateway's; closing this
    client leaves it open).
    """

    def __init__(
        self,
        base_url: str,
        participant_id: str,
        key: KeyLike,
        *,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.participant_id = participant_id
        self.key = load_key(key)
        self._owns_http = http is None  # a client handed in is the caller's to close
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self._tokens = TokenSource(self.http, participant_id, self.key)

    def close(self) -> None:
        """Close the HTTP client, if this client made it."""
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP ------------------------------------------------------------------------------

    def token(self) -> str:
        """Return the participant's access token (cached until shortly before it expires)."""
        return self._tokens.token()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one authenticated request; return a 2xx response, raise `GatewayProblem` else.

        A 401 on a cached token is tried once more with a new one (the old one may be revoked).
        """
        for attempt in (1, 2):
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.token()}"}
            try:
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise GatewayUnreachable(f"cannot reach {self.base_url}: {exc}") from None
            if response.status_code == 401 and attempt == 1:
                self._tokens.forget()
                kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
                continue
            if response.status_code >= 400:
                raise GatewayProblem.from_response(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise GatewayUnreachable(
                f"{self.base_url}{path} answered HTTP {response.status_code} without JSON"
            ) from None

    # -- catalogue and products ------------------------------------------------------------

    def catalogue(
        self,
        *,
        q: str | None = None,
        grade: str | None = None,
        level: str | None = None,
        domain: str | None = None,
        delivery: str | None = None,
        public_interest: bool | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Return a page of the catalogue (DCAT JSON-LD) that matches the filters."""
        params = {
            "q": q,
            "grade": grade,
            "level": level,
            "domain": domain,
            "delivery": delivery,
            "public_interest": None if public_interest is None else str(public_interest).lower(),
            "offset": offset,
            "limit": limit,
        }
        return self._json(
            "GET", "/catalogue", params={k: v for k, v in params.items() if v is not None}
        )

    def product(self, product_id: str) -> dict[str, Any]:
        """Return a product with its offers, lineage, grade and quality report."""
        return self._json("GET", f"/products/{product_id}")

    def offers(self, product_id: str) -> list[dict[str, Any]]:
        """Return a product's offers (terms, ODRL, exposure)."""
        return self.product(product_id)["offers"]

    def offer(self, product_id: str, offer_id: str) -> dict[str, Any]:
        """Return one offer of a product; a `GatewayProblem` 404 if the product has no such."""
        for offer in self.offers(product_id):
            if offer.get("id") == offer_id:
                return offer
        detail = f"product {product_id} has no offer {offer_id}"
        raise GatewayProblem(
            type="urn:dsgw:problem:not-found",
            title="Not found",
            status=404,
            detail=detail,
            problem={"detail": detail},
        )

    def draft_product(self, body: dict[str, Any]) -> dict[str, Any]:
        """Draft a product (merchant): the body of POST /products; returns it in state draft."""
        return self._json("POST", "/products", json=body)

    def move_product(
        self, product_id: str, action: str, *, reason: str | None = None
    ) -> dict[str, Any]:
        """Move a product: submit, list, reject, suspend, reinstate or delist."""
        body = {"reason": reason} if reason is not None else None
        return self._json("POST", f"/products/{product_id}/{action}", json=body)

    def submit_product(self, product_id: str) -> dict[str, Any]:
        """Submit a draft for compliance review (merchant)."""
        return self.move_product(product_id, "submit")

    # -- contracts ---------------------------------------------------------------------------

    def request_contract(self, offer_id: str, *, purpose: str) -> dict[str, Any]:
        """Request an offer for one of its purposes (consumer); the contract is REQUESTED."""
        return self._json("POST", "/contracts", json={"offer_id": offer_id, "purpose": purpose})

    def contract(self, contract_id: str) -> dict[str, Any]:
        """Return a contract: its state, canonical document, signatures, usage and quota."""
        return self._json("GET", f"/contracts/{contract_id}")

    def contracts(
        self,
        *,
        role: str | None = None,
        state: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return my contracts, newest first (as consumer, provider or holder: `role`)."""
        params = {"role": role, "state": state, "offset": offset, "limit": limit}
        return self._json(
            "GET", "/contracts", params={k: v for k, v in params.items() if v is not None}
        )

    def statements(
        self,
        *,
        period: str | None = None,
        party: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return a page of the statements I may read (my own; every one to the admin and
        auditors), newest period first; open one whole with `statement(id)`."""
        params = {"period": period, "party": party, "offset": offset, "limit": limit}
        return self._json(
            "GET",
            "/settlement/statements",
            params={k: v for k, v in params.items() if v is not None},
        )

    def statement(self, statement_id: str) -> dict[str, Any]:
        """Return a signed statement: the statement, its hash, signature, kid and ledger seq."""
        return self._json("GET", f"/settlement/statements/{statement_id}")

    def signature(self, contract: dict[str, Any] | str) -> str:
        """Return my compact JWS (EdDSA) over the contract's canonical document."""
        if isinstance(contract, str):
            contract = self.contract(contract)
        private = OKPAlgorithm.from_jwk(self.key.private_jwk())
        return sign_contract(contract["document"], private, kid=self.key.kid)

    def sign(self, contract_id: str) -> dict[str, Any]:
        """Sign the contract as the party I am in it and send the signature: as its provider
        (POST …/agree, → AGREED), or as its consumer (POST …/verify; the gateway countersigns,
        → FINALIZED). Returns the contract as it then stands."""
        contract = self.contract(contract_id)
        if self.participant_id == contract.get("provider_id"):
            step = "agree"
        elif self.participant_id == contract.get("consumer_id"):
            step = "verify"
        else:
            detail = (
                f"{self.participant_id} is neither the provider nor the consumer of "
                f"contract {contract_id}; only they sign it"
            )
            raise GatewayProblem(
                type="urn:dsgw:problem:forbidden",
                title="Forbidden",
                status=403,
                detail=detail,
                problem={"detail": detail},
            )
        body = {"signature": self.signature(contract)}
        return self._json("POST", f"/contracts/{contract_id}/{step}", json=body)

    def move_contract(
        self, contract_id: str, action: str, *, reason: str | None = None
    ) -> dict[str, Any]:
        """Approve, refuse, suspend, reinstate, revoke or terminate a contract."""
        body = {"reason": reason} if reason is not None else None
        return self._json("POST", f"/contracts/{contract_id}/{action}", json=body)

    def _purpose(self, contract_id: str, purpose: str | None) -> str:
        return purpose if purpose is not None else self.contract(contract_id)["purpose"]

    # -- exchanges and transfers -----------------------------------------------------------

    def exchange(
        self,
        contract_id: str,
        *,
        purpose: str | None = None,
        delivery: str = "api",
        fields: list[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Run an exchange under a contract (default purpose: the contract's); return the reply
        (rows, masked fields, receipt). `extra` carries compute's `aggregates`, `group_by`, …"""
        body = {
            "contract_id": contract_id,
            "purpose": self._purpose(contract_id, purpose),
            "delivery": delivery,
            "fields": fields,
            "limit": limit,
            "cursor": cursor,
            **extra,
        }
        return self._json(
            "POST", "/exchanges", json={k: v for k, v in body.items() if v is not None}
        )

    def start_transfer(
        self,
        contract_id: str,
        *,
        purpose: str | None = None,
        format: str = "application/jsonl",
        fields: list[str] | None = None,
        limit: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Start a pull transfer; the reply carries the data endpoint and its token."""
        body = {
            "contract_id": contract_id,
            "purpose": self._purpose(contract_id, purpose),
            "type": "pull",
            "format": FORMATS.get(format, format),
            "fields": fields,
            "limit": limit,
        }
        key = idempotency_key or f"pull-{uuid.uuid4()}"  # a retry of this call is the same pull
        return self._json(
            "POST",
            "/transfers",
            json={k: v for k, v in body.items() if v is not None},
            headers={"Idempotency-Key": key},
        )

    def transfer(self, transfer_id: str) -> dict[str, Any]:
        """Return a transfer (its state, rows, bytes, sha256 and, once completed, its receipt)."""
        return self._json("GET", f"/transfers/{transfer_id}")

    def stream(self, started: dict[str, Any]) -> Iterator[bytes]:
        """Yield the chunks of a started pull, from its data endpoint with its data token.

        The endpoint's path is asked of this client's gateway, so that the token goes nowhere
        else whatever host the reply names."""
        data = started.get("data") or {}
        if not data.get("endpoint") or not data.get("token"):
            raise VerificationFailed(
                "transfer", expected="a started pull with a data endpoint and token", found=data
            )
        parts = urlsplit(data["endpoint"])
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Authorization": f"Bearer {data['token']}"}
        try:
            with self.http.stream("GET", path, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise GatewayProblem.from_response(response)
                yield from response.iter_bytes(CHUNK_BYTES)
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(f"the stream from {self.base_url} broke: {exc}") from None

    def completed(self, transfer_id: str) -> dict[str, Any]:
        """Return the transfer once it is no longer STARTED (its end is recorded as the last
        byte leaves; a moment's wait covers a gateway that records it just after)."""
        deadline = time.monotonic() + COMPLETION_WAIT_SECONDS
        while True:
            found = self.transfer(transfer_id)
            if found["state"] != "STARTED" or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    def pull(
        self,
        contract_id: str,
        out: str | Path,
        *,
        purpose: str | None = None,
        format: str = "application/jsonl",
        fields: list[str] | None = None,
        limit: int | None = None,
        idempotency_key: str | None = None,
        keys: dict[str, Ed25519PublicKey] | None = None,
    ) -> PullResult:
        """Pull a contract's data into the file `out`, hashing it as it streams; check the
        digest against the transfer's record and its receipt, and the receipt offline with
        the gateway's keys (`keys`, else GET /ledger/keys). The file is written only when all
        of that holds; otherwise nothing is left at `out` and `VerificationFailed` says why."""
        out = Path(out)
        started = self.start_transfer(
            contract_id,
            purpose=purpose,
            format=format,
            fields=fields,
            limit=limit,
            idempotency_key=idempotency_key,
        )
        part = out.with_name(out.name + ".part")
        digest, size = hashlib.sha256(), 0
        try:
            with part.open("wb") as f:
                for chunk in self.stream(started):
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            done = self.completed(started["id"])
            sha256 = digest.hexdigest()
            receipt = self.check_transfer(done, sha256=sha256, size=size, keys=keys)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)
        return PullResult(
            transfer_id=done["id"],
            contract_id=contract_id,
            path=out,
            rows=done["rows"],
            bytes=size,
            sha256=sha256,
            receipt=receipt,
            transfer=done,
        )

    def check_transfer(
        self,
        transfer: dict[str, Any],
        *,
        sha256: str,
        size: int,
        keys: dict[str, Ed25519PublicKey] | None = None,
    ) -> ReceiptReport:
        """Check what was received (its SHA-256 and size) against a completed transfer's record
        and its receipt, then the receipt offline; return the receipt's report."""
        what = f"transfer {transfer.get('id')}"
        if transfer.get("state") != "COMPLETED":
            raise VerificationFailed(
                "state", expected="COMPLETED", found=transfer.get("state"), what=what
            )
        if transfer.get("sha256") != sha256:
            raise VerificationFailed(
                "digest",
                expected=f"the transfer's sha256 {transfer.get('sha256')}",
                found=f"sha256 {sha256} of the {size} bytes received",
                what=what,
            )
        if transfer.get("bytes") != size:
            raise VerificationFailed(
                "size", expected=f"{transfer.get('bytes')} bytes", found=size, what=what
            )
        entry = transfer.get("receipt") or {}
        recorded = ((entry.get("body") or {}).get("data") or {}).get("sha256")
        if recorded != sha256:
            raise VerificationFailed(
                "receipt-digest",
                expected=f"the receipt's sha256 {recorded}",
                found=f"sha256 {sha256} of the bytes received",
                what=what,
            )
        return self.verify_receipt(self.receipt(entry["seq"]), keys=keys, seq=entry["seq"])

    # -- evidence ----------------------------------------------------------------------------

    def ledger_keys(self) -> dict[str, Ed25519PublicKey]:
        """Return every key the gateway ever signed the ledger with (GET /ledger/keys)."""
        try:
            response = self.http.get("/ledger/keys")
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(f"cannot reach {self.base_url}: {exc}") from None
        if response.status_code != 200:
            raise GatewayProblem.from_response(response)
        return public_keys(response.json())

    def receipt(self, seq: int) -> dict[str, Any]:
        """Return the receipt of a ledger entry (with its inclusion proof once checkpointed)."""
        return self._json("GET", f"/ledger/receipts/{seq}")

    def verify_receipt(
        self,
        receipt: dict[str, Any],
        *,
        keys: dict[str, Ed25519PublicKey] | None = None,
        seq: int | None = None,
    ) -> ReceiptReport:
        """Check a receipt offline with the gateway's public keys (ledger.receipt) and, when
        `seq` is given, that it is that entry's; return its report."""
        try:
            report = check_receipt(receipt, keys if keys is not None else self.ledger_keys())
        except ReceiptError as exc:
            raise VerificationFailed(
                exc.check, expected=exc.expected, found=exc.found, what="receipt"
            ) from None
        if seq is not None and report.seq != seq:
            raise VerificationFailed("seq", expected=seq, found=report.seq, what="receipt")
        return report

    def verify_exchange(
        self, result: dict[str, Any], *, keys: dict[str, Ed25519PublicKey] | None = None
    ) -> ReceiptReport:
        """Check offline the receipt an exchange's reply carries (its entry's hash and
        signature), and that it records this reply's content hash."""
        entry = result.get("receipt") or {}
        receipt = build_receipt(
            {"body": entry.get("body"), "hash": entry.get("hash"), "sig": entry.get("sig")}, None
        )
        report = self.verify_receipt(receipt, keys=keys)
        recorded = ((entry.get("body") or {}).get("data") or {}).get("content_hash")
        if recorded is not None and recorded != result.get("content_hash"):
            raise VerificationFailed(
                "content-hash",
                expected=f"the receipt's content_hash {recorded}",
                found=result.get("content_hash"),
                what=f"exchange {result.get('exchange_id')}",
            )
        return report

    def ledger_entries(self, *, start: int = 1, limit: int = LEDGER_PAGE) -> list[dict]:
        """Return ledger entries from `start` (auditors, admins)."""
        return self._json("GET", "/ledger/entries", params={"start": start, "limit": limit})

    def trace(self, ident: str, *, start: int = 1) -> Iterator[dict[str, Any]]:
        """Yield, in order, every ledger entry whose data names `ident` (a product, contract,
        transfer, participant … id), paging through GET /ledger/entries (auditors, admins)."""
        while True:
            page = self.ledger_entries(start=start, limit=LEDGER_PAGE)
            for entry in page:
                body = entry.get("body") or {}
                if names(body.get("data"), ident):
                    yield entry
            if len(page) < LEDGER_PAGE:
                return
            start = page[-1]["body"]["seq"] + 1
