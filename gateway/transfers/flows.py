"""Transfers end to end: decide with OPA exactly as an exchange, reserve the quota, start, stream
(pull through the data endpoint, push to the consumer's sink), and record what was delivered.

Evidence first: the decision and `transfer.started` are committed before the first byte; a
stream's end is `transfer.completed` (rows, bytes, SHA-256 of exactly the bytes delivered) or
`transfer.interrupted` (what was sent before it broke). Metering is exact: the rows the decision
allows (the policy's row_cap, or the request's limit if lower) are reserved from the contract's
quota at start; what was delivered is kept and the rest released when the transfer ends.

A push sink's credentials are never stored: the address (secret part included) lives only in
this process's memory (`_SINKS`) while its transfer is running or suspended, and is dropped when
the transfer ends; tables, replies, logs and ledger entries get `address.public()` only.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.authorisations import service as authorisations
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.db import session_scope
from gateway.core.errors import Problem, conflict, forbidden, unprocessable
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.dataplane import (
    DEFAULT_BATCH_SIZE,
    BatchStream,
    Encoder,
    egress,
    encode,
    encoder_for,
    open_sink,
)
from gateway.dataplane.addresses import parse_sink_address
from gateway.evidence.service import commit, record
from gateway.exchanges import flows as exchanges
from gateway.exchanges.models import ExchangeRequest
from gateway.negotiation import service as contracts
from gateway.negotiation.models import Contract
from gateway.participants.models import Participant
from gateway.products import service as products
from gateway.resources import service as resources
from gateway.resources.data import open_delivery
from gateway.transfers import service, tokens
from gateway.transfers.models import DataToken, InlineTransferRequest, Transfer, TransferRequest
from ledger import Entry

log = structlog.get_logger("gateway.transfers")

# Push sink addresses, secrets included, by transfer id: memory only, while the transfer runs.
_SINKS: dict[str, Any] = {}
_SINKS_LOCK = threading.Lock()
# Rows per batch a transfer streams: a broken stream is known to within one batch.
BATCH_ROWS = DEFAULT_BATCH_SIZE
# The push workers of this process, by transfer id (tests and shutdown wait for them).
_WORKERS: dict[str, threading.Thread] = {}
# A running stream reads its transfer's state again at the batch after a party moved the
# transfer in this process (`_MOVES`: a count per transfer being streamed here, bumped once the
# move is committed), and otherwise at most every WATCH_SECONDS (a move through another
# process of the gateway). `_STREAMS` counts the streams of each transfer, so that the counts
# are kept only while one runs.
WATCH_SECONDS = 0.25
_MOVES: dict[str, int] = {}
_STREAMS: dict[str, int] = {}
_MOVES_LOCK = threading.Lock()


def _moved(transfer_id: str) -> None:
    """Tell this process's streams of `transfer_id` that it moved (call after the commit)."""
    with _MOVES_LOCK:
        if transfer_id in _MOVES:
            _MOVES[transfer_id] += 1


def _streaming(transfer_id: str, delta: int) -> None:
    """Count a stream of `transfer_id` in (+1) or out (-1)."""
    with _MOVES_LOCK:
        left = _STREAMS.get(transfer_id, 0) + delta
        if left > 0:
            _STREAMS[transfer_id] = left
            _MOVES.setdefault(transfer_id, 0)
        else:
            _STREAMS.pop(transfer_id, None)
            _MOVES.pop(transfer_id, None)


class Stopped(Exception):
    """The transfer left STARTED while its stream ran (suspended or terminated)."""


def _sink_address(request: TransferRequest):
    """Return the push sink's address, else raise 422 (naming no secret value)."""
    if request.type == "pull":
        if request.sink is not None:
            raise unprocessable("sink applies to push transfers only")
        return None
    if request.sink is None:
        raise unprocessable("a push transfer needs sink: an object or http sink address")
    try:
        return parse_sink_address(request.sink)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise unprocessable(f"sink.{where}: {first.get('msg', 'invalid')}") from None


def check_egress(gateway: Gateway, address) -> None:
    """Refuse (422) a sink at one of the gateway's own services or at an internal address its
    operator did not allow (gateway/dataplane/egress.py)."""
    url = getattr(address, "url", None) or getattr(address, "endpoint", None)
    if url is None:  # an object sink without an endpoint: the public AWS S3
        return
    settings = gateway.settings
    egress.check_sink(
        url,
        allowed=egress.parse_networks(settings.sink_allowed_networks),
        own=egress.own_services(
            [settings.opa_url, settings.issuer, settings.resolved_database_url]
        ),
    )


def _entry_data(transfer: Transfer, **more: Any) -> dict[str, Any]:
    return {
        "transfer": transfer.id,
        "contract": transfer.contract_id,
        "consumer": transfer.consumer_id,
        "provider": transfer.provider_id,
        **more,
    }


def _record(
    session: Session, gateway: Gateway, entry_type: str, transfer: Transfer, /, **data: Any
) -> Entry:
    return record(session, gateway.signer, type=entry_type, data=_entry_data(transfer, **data))


def _reservation(decision_obligations: dict[str, Any], limit: int | None) -> int | None:
    """Return the rows to hold: the lower of the policy's row cap and the limit (None: no cap)."""
    caps = [c for c in (decision_obligations.get("row_cap"), limit) if c is not None]
    return min(caps) if caps else None


def start(
    session: Session, gateway: Gateway, *, subject: Participant, request: TransferRequest
) -> tuple[Transfer, DataToken | None]:
    """Decide and start a transfer; return it (and a pull's data token), or raise the recorded
    denial's problem. A push starts its worker once `transfer.started` is committed."""
    address = _sink_address(request)
    if address is not None:
        check_egress(gateway, address)
    exchanges._refuse_unless_consumer(
        session, gateway, subject=subject, contract_id=request.contract_id
    )
    for attempt in range(exchanges.CLAIM_ATTEMPTS):
        if attempt:
            session.expire_all()  # decide again on what stands now
        started = _start_once(session, gateway, subject=subject, request=request, sink=address)
        if started is not None:
            return started
    raise exchanges.contended(request.contract_id)


def _start_once(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    request: TransferRequest,
    sink,
) -> tuple[Transfer, DataToken | None] | None:
    """Decide a transfer with no lock held across OPA, then, under the contract's lock for the
    short write, start it if the contract still stands as the decision saw it; None when it
    changed meanwhile (nothing written: decide again)."""
    address = sink
    contract = contracts.current(session, gateway, request.contract_id)
    product = products.get(session, contract.product_id)
    resource = resources.get(session, product.resource_id)
    exchanges._check_fields(request, resource)  # before any policy call
    authorisations.expire_if_over(
        session, gateway.signer, authorisations.get(session, product.authorisation_id)
    )
    _, offer = products.get_offer(session, contract.offer_id)
    available = offer.fields if offer.fields is not None else [f["name"] for f in resource.fields]
    fields = request.requested(available)
    transfer_id, decision_id = new_id("trf"), new_id("dec")
    described = {"type": request.type, "format": request.format}
    the_input = exchanges.policy_input(
        subject=subject,
        request=request,  # type: ignore[arg-type]  # purpose, delivery "file"
        fields=fields,
        resource=resource,
        product=product,
        contract=contract,
        offer=offer,
        transfer=described,
    )
    seen = (contract.state, contract.rows_used, contract.calls_used, product.status)
    decision, version, _ = exchanges._decide(
        session,
        gateway,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        the_input=the_input,
        delivery=request.delivery,
        deny_as={
            "entry_type": "transfer.denied",
            "extra": {"transfer": transfer_id, **described},
        },
        release=True,
    )
    # The short write: the contract locked (and re-read), the decision's assumptions checked.
    contract = contracts.get(session, request.contract_id, for_update=True)
    session.refresh(product)
    if (contract.state, contract.rows_used, contract.calls_used, product.status) != seen:
        session.rollback()
        return None
    obligations = decision.model_dump(mode="json")["obligations"]
    reserved = _reservation(obligations, request.limit)
    now = clock.now()
    transfer = Transfer(
        id=transfer_id,
        contract_id=contract.id,
        consumer_id=subject.id,
        provider_id=contract.provider_id,
        product_id=product.id,
        resource_id=resource.id,
        type=request.type,
        format=request.format,
        purpose=request.purpose,
        fields=[f for f in fields if f not in set(obligations.get("drop") or [])],
        limit=request.limit,
        state="REQUESTED",
        decision_id=decision_id,
        obligations=obligations,
        watermark=exchanges._watermark(decision, decision_id, subject),
        reserved_rows=reserved,
        settled=False,
        rows=0,
        bytes=0,
        metered_rows=0,
        sha256=None,
        streaming=False,
        token_generation=1,
        sink=_public_sink(address),
        location=None,
        reason=None,
        completed_seq=None,
        created_at=now,
        updated_at=now,
    )
    # An offer whose transfers the provider starts (`transfer_start: provider`): the transfer
    # is decided and its quota held now, and stays REQUESTED until the merchant starts it.
    waits = offer.transfer_start == "provider"
    if not waits:
        service.advance(transfer, "start")
    session.add(transfer)
    contract.rows_used += reserved or 0
    contract.calls_used += 1  # each transfer once, whatever its resumes
    result = decision.model_dump(mode="json")
    entry = _record(
        session,
        gateway,
        "transfer.requested" if waits else "transfer.started",
        transfer,
        **({"awaiting": "provider"} if waits else {"previous_state": "REQUESTED"}),
        decision=decision_id,
        product=product.id,
        resource=resource.id,
        purpose=request.purpose,
        type=request.type,
        format=request.format,
        fields=transfer.fields,
        masked=service.masked(transfer),
        watermark=transfer.watermark,
        reserved_rows=reserved,
        sink=_public_location(transfer.sink),
        input_hash=content_hash(the_input),
        policy_version=version,
        exposure=result.get("exposure"),
    )
    exchanges._keep_decision(  # commits the transfer, the reservation and both records
        session,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        allow=True,
        policy_input=the_input,
        result=result,
        version=version,
        rows=0,
        entry=entry,
    )
    if waits:
        if address is not None:  # held in memory until the provider starts the push
            with _SINKS_LOCK:
                _SINKS[transfer.id] = address
        return transfer, None
    if address is not None:
        _start_push(gateway, transfer, address)
        return transfer, None
    return transfer, tokens.issue(gateway, transfer)


def _public_sink(address) -> dict[str, Any] | None:
    """Return what may be kept and shown of a sink address: no secret part, and an http URL
    without its query (a presigned URL's query is a credential)."""
    if address is None:
        return None
    public = address.public()
    if public.get("type") == "http":
        parts = urlsplit(public["url"])
        public["url"] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return public


def _public_location(sink: dict[str, Any] | None) -> str | None:
    if sink is None:
        return None
    if sink.get("type") == "object":
        return f"s3://{sink['bucket']}/{sink['key']}"
    return str(sink.get("url"))


def _lock_pair(session: Session, transfer_id: str) -> tuple[Contract, Transfer]:
    """Lock the transfer's contract, then the transfer (always in this order)."""
    contract_id = service.get(session, transfer_id).contract_id
    contract = contracts.get(session, contract_id, for_update=True)
    return contract, service.get(session, transfer_id, for_update=True)


def _settle(contract: Contract, transfer: Transfer) -> int | None:
    """Meter what was delivered and release the rest of the reservation; return the rows
    released (None when already settled)."""
    if transfer.settled:
        return None
    reserved = transfer.reserved_rows or 0
    contract.rows_used = max(0, contract.rows_used + transfer.metered_rows - reserved)
    transfer.settled = True
    return max(0, reserved - transfer.metered_rows)


def act(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    transfer_id: str,
    action: str,
    reason: str = "",
) -> tuple[Transfer, DataToken | None]:
    """Suspend, resume (re-decided by OPA) or terminate a transfer, by its consumer or its
    provider; record the transition. Return the transfer and, for a resumed pull, a new token."""
    found = service.get_visible(session, transfer_id, subject)
    service.require_party(found, subject)
    contract, transfer = _lock_pair(session, transfer_id)
    if action == "resume":
        return _resume(session, gateway, subject=subject, contract=contract, transfer=transfer)
    if action == "start":
        if subject.id != transfer.provider_id:
            raise forbidden(f"only the provider {transfer.provider_id} starts a REQUESTED transfer")
        return _resume(
            session, gateway, subject=subject, contract=contract, transfer=transfer, action="start"
        )
    if action == "complete":
        return _complete(session, gateway, subject=subject, contract=contract, transfer=transfer,
                         reason=reason)  # fmt: skip
    before = service.advance(transfer, action)
    extra: dict[str, Any] = {"by": subject.id, "previous_state": before}
    if reason:
        extra["reason"] = reason
    if action == "terminate":
        transfer.reason = reason or f"terminated by {subject.id}"
        extra["released_rows"] = _settle(contract, transfer)
        extra["metered_rows"] = transfer.metered_rows
        _drop_sink(transfer.id)
    _record(session, gateway, f"transfer.{'suspended' if action == 'suspend' else 'terminated'}",
            transfer, **extra)  # fmt: skip
    commit(session)
    _moved(transfer.id)
    return transfer, None


def _complete(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    contract: Contract,
    transfer: Transfer,
    reason: str,
) -> tuple[Transfer, DataToken | None]:
    """A party declares a STARTED transfer complete (DSP's TransferCompletionMessage, either
    side): → COMPLETED, what was delivered metered and the rest of the hold released;
    `transfer.marked_completed` records who did and what had been delivered. Refused (409)
    in any other state, and while a pull is being delivered (its stream's end completes it)."""
    if transfer.streaming:
        raise conflict(
            "transfer-state-conflict",
            "Transfer state conflict",
            f"transfer {transfer.id} is being delivered: its stream's end completes it",
            current_state=transfer.state,
        )
    before = service.advance(transfer, "complete")
    released = _settle(contract, transfer)
    _drop_sink(transfer.id)
    _record(
        session, gateway, "transfer.marked_completed", transfer,
        by=subject.id, previous_state=before, reason=reason or f"completed by {subject.id}",
        rows=transfer.rows, bytes=transfer.bytes, metered_rows=transfer.metered_rows,
        released_rows=released,
    )  # fmt: skip
    commit(session)
    _moved(transfer.id)
    return transfer, None


def _resume(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    contract: Contract,
    transfer: Transfer,
    action: str = "resume",
) -> tuple[Transfer, DataToken | None]:
    """Re-decide a suspended transfer with OPA; start it again, or record the denial (it stays
    SUSPENDED). Its own reservation and call are not counted against it twice.

    `action="start"`: the provider starts a REQUESTED transfer (its offer's `transfer_start:
    provider`), decided again by OPA in the same way (`transfer.started`, by the provider);
    a denial leaves it REQUESTED."""
    if transfer.state != ("REQUESTED" if action == "start" else "SUSPENDED"):
        raise service.state_conflict(transfer, action)
    if transfer.type == "push" and _sink(transfer.id) is None:
        raise conflict(
            "transfer-sink-gone",
            "Sink credentials gone",
            f"transfer {transfer.id}'s sink credentials are not held any more (they live in "
            "the gateway's memory only, and it restarted): terminate it and start a new push",
        )
    contracts.expire_if_due(session, gateway, contract)
    product = products.get(session, transfer.product_id)
    resource = resources.get(session, transfer.resource_id)
    _, offer = products.get_offer(session, contract.offer_id)
    decision_id = new_id("dec")
    request = TransferRequest(
        contract_id=transfer.contract_id,
        purpose=transfer.purpose,
        type=transfer.type,  # type: ignore[arg-type]
        format=transfer.format,  # type: ignore[arg-type]
        fields=transfer.fields,
        limit=transfer.limit,
    )
    described = {"type": transfer.type, "format": transfer.format}
    the_input = exchanges.policy_input(
        subject=session.get(Participant, transfer.consumer_id) or subject,
        request=request,  # type: ignore[arg-type]
        fields=transfer.fields,
        resource=resource,
        product=product,
        contract=contract,
        offer=offer,
        transfer=described,
    )
    if the_input["contract"] is not None and not transfer.settled:
        usage = the_input["contract"]["usage"]  # this transfer's own hold is not usage
        usage["rows"] = max(0, usage["rows"] - (transfer.reserved_rows or 0))
        usage["calls"] = max(0, usage["calls"] - 1)
    consumer = session.get(Participant, transfer.consumer_id) or subject
    decision, version, _ = exchanges._decide(
        session,
        gateway,
        decision_id=decision_id,
        subject=consumer,
        contract=contract,
        the_input=the_input,
        delivery="file",
        deny_as={
            "entry_type": "transfer.denied",
            "extra": {"transfer": transfer.id, f"{action}_by": subject.id, **described},
        },
    )
    result = decision.model_dump(mode="json")
    transfer.obligations = result["obligations"]
    transfer.decision_id = decision_id
    if action == "resume":
        transfer.token_generation += 1
    transfer.streaming = False
    before = service.advance(transfer, action)
    entry = _record(
        session,
        gateway,
        "transfer.resumed" if action == "resume" else "transfer.started",
        transfer,
        by=subject.id,
        previous_state=before,
        decision=decision_id,
        masked=service.masked(transfer),
        input_hash=content_hash(the_input),
        policy_version=version,
    )
    exchanges._keep_decision(
        session,
        decision_id=decision_id,
        subject=consumer,
        contract=contract,
        allow=True,
        policy_input=the_input,
        result=result,
        version=version,
        rows=0,
        entry=entry,
    )
    _moved(transfer.id)  # a stream of the earlier attempt stops at its next batch
    if transfer.type == "push":
        _start_push(gateway, transfer, _sink(transfer.id))
        return transfer, None
    return transfer, tokens.issue(gateway, transfer)


def new_token(
    session: Session, gateway: Gateway, *, subject: Participant, transfer_id: str
) -> tuple[Transfer, DataToken]:
    """Return a fresh data token of a started pull to its consumer (the earlier one expires)."""
    transfer = service.get_visible(session, transfer_id, subject)
    if subject.id != transfer.consumer_id:
        raise Problem(
            403, "forbidden", "Not allowed", f"only the consumer of {transfer.id} gets its token"
        )
    if transfer.type != "pull" or transfer.state != "STARTED" or transfer.streaming:
        raise conflict(
            "transfer-state-conflict",
            "Transfer state conflict",
            f"transfer {transfer.id} is a {transfer.type} transfer, {transfer.state}"
            f"{', being delivered' if transfer.streaming else ''}: no data token to issue",
            current_state=transfer.state,
        )
    return transfer, tokens.issue(gateway, transfer)


# ---------------------------------------------------------------------------------------------
# The data endpoint (pull).


def _refuse(
    session: Session, gateway: Gateway, transfer: Transfer, problem: Problem, **data: Any
) -> Problem:
    """Record a refused use of a real transfer's data endpoint (`transfer.refused`, committed)."""
    session.rollback()
    _record(session, gateway, "transfer.refused", transfer, **data)
    commit(session)
    return problem


def inline_pull(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    request: ExchangeRequest,
    media_type: str,
) -> tuple[Transfer, Iterator[bytes], Encoder]:
    """Start a pull transfer for an exchange whose caller asked (Accept) for a data format, and
    open it at once: the exchange's reply is the stream, with the same evidence as any pull
    (`transfer.started` before the first byte, its end recorded by `PullStream`)."""
    transfer, token = start(
        session,
        gateway,
        subject=subject,
        request=InlineTransferRequest(
            contract_id=request.contract_id,
            purpose=request.purpose,
            type="pull",
            format=media_type,
            fields=request.fields,
            limit=request.limit,
            judged_as=request.delivery,
        ),
    )
    assert token is not None  # a pull always has its token
    return open_pull(session, gateway, transfer_id=transfer.id, token=token.token)


def open_pull(
    session: Session, gateway: Gateway, *, transfer_id: str, token: str | None
) -> tuple[Transfer, Iterator[bytes], Encoder]:
    """Check the data token against the transfer; mark the transfer as being delivered and
    return its encoded stream (the stream's end records the evidence, `PullStream`)."""
    if not token:
        raise tokens.token_problem("the data endpoint needs the transfer's data token (Bearer)")
    claims = tokens.verify(gateway, token)
    transfer = service.get(session, transfer_id)
    if claims["transfer"] != transfer.id or claims.get("contract") != transfer.contract_id:
        raise _refuse(
            session, gateway, transfer,
            Problem(403, "transfer-token-mismatch", "Token of another transfer",
                    f"this data token opens transfer {claims['transfer']!r}, not {transfer.id}"),
            reason="TOKEN_OF_ANOTHER_TRANSFER", presented_by=claims["sub"],
        )  # fmt: skip
    if claims["aud"] != tokens.endpoint(gateway, transfer.id):
        raise tokens.token_problem("the data token is not for this data endpoint")
    if claims["sub"] != transfer.consumer_id:
        raise tokens.token_problem("the data token names another consumer")
    if claims["gen"] != transfer.token_generation:
        raise _refuse(
            session, gateway, transfer,
            tokens.token_problem("the data token was retired (the transfer was resumed since); "
                                 "use the token the resume returned"),
            reason="TOKEN_RETIRED", presented_by=claims["sub"],
        )  # fmt: skip
    transfer = service.get(session, transfer_id, for_update=True)
    contract = session.get(Contract, transfer.contract_id)
    if transfer.state != "STARTED" or transfer.streaming or transfer.type != "pull":
        doing = ", already being delivered" if transfer.streaming else ""
        raise _refuse(
            session, gateway, transfer,
            conflict("transfer-state-conflict", "Transfer state conflict",
                     f"transfer {transfer.id} is {transfer.state}{doing}: nothing to pull",
                     current_state=transfer.state),
            reason=f"STATE_{transfer.state}{'_STREAMING' if transfer.streaming else ''}",
            presented_by=claims["sub"],
        )  # fmt: skip
    if contract is None or contract.state != "FINALIZED":
        raise _refuse(
            session, gateway, transfer,
            conflict("contract-not-active", "Contract not active",
                     f"contract {transfer.contract_id} is "
                     f"{contract.state if contract else 'gone'}: suspend or terminate the "
                     "transfer; a resume is decided again"),
            reason="CONTRACT_NOT_ACTIVE", presented_by=claims["sub"],
        )  # fmt: skip
    transfer.streaming = True
    transfer.updated_at = clock.now()
    commit(session)
    try:
        stream, enc = _open(session, gateway, transfer)
    except BaseException:
        transfer = service.get(session, transfer_id, for_update=True)
        transfer.streaming = False
        commit(session)
        raise
    return transfer, _watched_chunks(gateway, transfer, stream, enc), enc


def _open(session: Session, gateway: Gateway, transfer: Transfer) -> tuple[BatchStream, Encoder]:
    """Return the transfer's stream (obligations applied, capped at its reservation) and its
    encoder; the session's read transaction ends before the stream is iterated."""
    resource = resources.get(session, transfer.resource_id)
    limit = transfer.reserved_rows if transfer.reserved_rows is not None else transfer.limit
    stream = open_delivery(
        session,
        gateway,
        resource,
        fields=transfer.fields,
        obligations=transfer.obligations,
        limit=limit,
        watermark=transfer.watermark,
        batch_size=BATCH_ROWS,
    )
    session.commit()  # no transaction (SQLite: no write lock) held while the bytes flow
    return stream, encoder_for(transfer.format, stream.schema)


def _watched_chunks(
    gateway: Gateway, transfer: Transfer, stream: BatchStream, enc: Encoder
) -> Iterator[bytes]:
    """Return the encoded bytes of `stream`, stopping (Stopped) at the batch after the transfer
    leaves STARTED or is resumed into a newer attempt."""
    return encode(_watch(gateway, transfer.id, transfer.token_generation, stream), enc)


def _watch(gateway: Gateway, transfer_id: str, generation: int, stream: BatchStream) -> BatchStream:
    """Return `stream`, raising Stopped before the next batch once the transfer has left
    STARTED (a party suspended or terminated it) or a resume began a newer attempt
    (`generation`: the transfer's token generation when this stream began).

    The state is read at the first batch (the stream then counts itself in `_STREAMS`), then
    again at the batch after a move in this process (`_moved`), else at most every
    WATCH_SECONDS: a query per batch cost the stream a tenth of its time.
    """
    seen, last, counted = 0, 0.0, False

    def check(batch: pa.RecordBatch) -> pa.RecordBatch:
        nonlocal seen, last, counted
        if not counted:  # counted from its first batch: a stream never begun leaves no count
            _streaming(transfer_id, +1)
            counted = True
        else:
            moves = _MOVES.get(transfer_id, 0)
            if moves == seen and time.monotonic() - last < WATCH_SECONDS:
                return batch
        seen, last = _MOVES.get(transfer_id, 0), time.monotonic()
        with gateway.engine.connect() as conn:
            found = conn.execute(
                select(Transfer.state, Transfer.token_generation).where(Transfer.id == transfer_id)
            ).one_or_none()
        if found is None or found[0] != "STARTED" or found[1] != generation:
            state = found[0] if found is not None else "gone"
            raise Stopped(f"transfer became {state}")
        return batch

    def close() -> None:
        nonlocal counted
        watched.close()
        if counted:
            counted = False
            _streaming(transfer_id, -1)

    watched = stream.map(stream.schema, check)
    return BatchStream(watched.schema, watched, on_close=close, threadsafe=stream.threadsafe)


class PullStream:
    """The bytes of one pull, handed out one chunk at a time; its end is recorded once:
    completed when the last chunk was taken, interrupted when closed early or failing."""

    def __init__(
        self,
        gateway: Gateway,
        transfer_id: str,
        chunks: Iterator[bytes],
        enc: Encoder,
        *,
        generation: int,
    ) -> None:
        self.gateway, self.transfer_id, self.enc = gateway, transfer_id, enc
        self.generation = generation
        self._chunks = chunks
        self._ended = False

    def next(self) -> bytes | memoryview | None:
        """Return the next chunk, or None after the last (the completion is then recorded)."""
        if self._ended:
            return None
        try:
            return next(self._chunks)
        except StopIteration:
            self._end(completed=True)
            return None
        except Stopped as exc:
            self._end(completed=False, reason=str(exc))
            raise
        except Exception as exc:
            self._end(completed=False, reason=f"source failed: {type(exc).__name__}")
            raise

    def close(self) -> None:
        """Stop early (the client went away): record what was sent as interrupted."""
        if self._ended:
            return
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        self._end(completed=False, reason="the client closed the stream")

    def _end(self, *, completed: bool, reason: str | None = None) -> None:
        self._ended = True
        finish(
            self.gateway,
            self.transfer_id,
            self.enc,
            generation=self.generation,
            completed=completed,
            reason=reason,
        )


def finish(
    gateway: Gateway,
    transfer_id: str,
    enc: Encoder | None,
    *,
    generation: int,
    completed: bool,
    reason: str | None = None,
    location: str | None = None,
) -> None:
    """Record a stream's end in its own transaction: `transfer.completed` (→ COMPLETED) or
    `transfer.interrupted` (→ TERMINATED, or left SUSPENDED/TERMINATED as a party set it), with
    the rows, bytes and SHA-256 of what was produced; meter and release the reservation.

    A stream of an earlier attempt (`generation` older than the transfer's: it was suspended and
    resumed meanwhile) is recorded as interrupted and metered, and leaves the newer attempt be."""
    rows = enc.rows if enc is not None else 0
    size = enc.bytes if enc is not None else 0
    digest = enc.sha256 if enc is not None else hashlib.sha256().hexdigest()
    try:
        with session_scope(gateway.sessions) as session:
            contract, transfer = _lock_pair(session, transfer_id)
            current = transfer.token_generation == generation
            counts = {"rows": rows, "bytes": size, "sha256": digest, "format": transfer.format}
            if location or (current and transfer.location):
                counts["location"] = location or transfer.location
            # Every attempt streams from the first row: what it adds to the metered rows is what
            # it sent beyond the most an earlier attempt sent (the rows left the gateway once).
            added = max(0, rows - transfer.metered_rows)
            transfer.metered_rows += added
            if transfer.settled:  # terminated mid-stream: the rows still left, meter them
                contract.rows_used += added
            if not current:
                _record(session, gateway, "transfer.interrupted", transfer, **counts,
                        state=transfer.state, attempt=generation,
                        reason="a resume began a newer attempt")  # fmt: skip
                commit(session)
                return
            transfer.rows, transfer.bytes, transfer.sha256 = rows, size, digest
            transfer.location = location or transfer.location
            if completed and transfer.state == "STARTED":
                service.advance(transfer, "complete")
                counts["released_rows"] = _settle(contract, transfer)
                entry = _record(session, gateway, "transfer.completed", transfer, **counts)
                transfer.completed_seq = entry.seq
                _drop_sink(transfer.id)
            else:
                why = reason or f"the transfer became {transfer.state}"
                if transfer.state == "STARTED":
                    service.advance(transfer, "interrupt")
                    transfer.reason = why
                    counts["released_rows"] = _settle(contract, transfer)
                    _drop_sink(transfer.id)
                transfer.streaming = False
                _record(session, gateway, "transfer.interrupted", transfer, **counts,
                        state=transfer.state, attempt=generation,
                        reason=why[:200])  # fmt: skip
            commit(session)
    except Exception:
        log.exception("the end of a transfer could not be recorded", transfer=transfer_id)


# ---------------------------------------------------------------------------------------------
# Push.


def _sink(transfer_id: str):
    with _SINKS_LOCK:
        return _SINKS.get(transfer_id)


def _drop_sink(transfer_id: str) -> None:
    with _SINKS_LOCK:
        _SINKS.pop(transfer_id, None)


def _start_push(gateway: Gateway, transfer: Transfer, address) -> None:
    """Run the push off the request, in a thread with its own sessions."""
    transfer_id, generation = transfer.id, transfer.token_generation
    with _SINKS_LOCK:
        _SINKS[transfer_id] = address
    worker = threading.Thread(
        target=_push,
        args=(gateway, transfer_id, generation, address),
        name=f"push-{transfer_id}-{generation}",
        daemon=True,
    )
    _WORKERS[f"{transfer_id}-{generation}"] = worker
    worker.start()


def _push(gateway: Gateway, transfer_id: str, generation: int, address) -> None:
    """Write the transfer's stream to its sink; record the end (completed or interrupted)."""
    enc: Encoder | None = None
    end = dict(generation=generation)
    try:
        check_egress(gateway, address)  # again, as it connects: a name may resolve anew
        with session_scope(gateway.sessions) as session:
            transfer = service.get(session, transfer_id)
            stream, enc = _open(session, gateway, transfer)
        watched = _watch(gateway, transfer_id, generation, stream)
        result = open_sink(address).write(watched, enc)
    except Stopped as exc:
        finish(gateway, transfer_id, enc, completed=False, reason=str(exc), **end)
    except Problem as exc:
        finish(gateway, transfer_id, enc, completed=False, reason=exc.detail, **end)
    except Exception as exc:
        log.warning("push failed", transfer=transfer_id, error=type(exc).__name__)
        why = f"sink failed: {type(exc).__name__}"
        finish(gateway, transfer_id, enc, completed=False, reason=why, **end)
    else:
        finish(gateway, transfer_id, enc, completed=True, location=result.location, **end)
    finally:
        _WORKERS.pop(f"{transfer_id}-{generation}", None)


def wait_for_pushes(timeout: float = 30.0) -> None:
    """Wait for this process's push workers to end (tests; a clean shutdown)."""
    for worker in list(_WORKERS.values()):
        worker.join(timeout)
