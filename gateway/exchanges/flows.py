"""The exchange: decide with OPA, apply obligations, deliver, meter, and record the evidence.

The rows leave only in the reply of a transaction that has durably written the ledger entry
describing them; every decision, allowed or denied, is recorded the same way.
"""

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyarrow as pa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session

from contracts import Offer
from gateway.authorisations import service as authorisations
from gateway.authorisations.models import Authorisation
from gateway.compute import flows as compute
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.db import fetch, read_alone
from gateway.core.errors import Problem, not_found, unprocessable
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.dataplane import decode_cursor, encode_cursor
from gateway.dataplane.embedded import json_rows
from gateway.dataplane.errors import DataPlaneError
from gateway.evidence import sequencer as sequenced
from gateway.evidence.service import commit, record
from gateway.exchanges import obligations as obl
from gateway.exchanges.inputs import policy_input
from gateway.exchanges.models import (
    DEFAULT_PAGE_ROWS,
    Decision,
    ExchangeRequest,
    ExchangeResult,
    OpenExchangeRequest,
    Receipt,
)
from gateway.negotiation import service as contracts
from gateway.negotiation.models import Contract
from gateway.participants.models import Participant
from gateway.policy import versions as policy_versions
from gateway.policy.client import PolicyDecision, PolicyError
from gateway.products import service as products
from gateway.products.models import Product, ProductOffer
from gateway.resources import data as resource_data
from gateway.resources import service as resources
from gateway.resources.models import EmbeddedDataset, Resource
from ledger import Entry


def _deny(
    session: Session,
    gateway: Gateway,
    *,
    decision_id: str,
    subject: Participant,
    contract: Contract | None,
    policy_input: dict[str, Any],
    policy_version: str | None,
    result: dict[str, Any],
    status: int,
    product_id: str | None = None,
    entry_type: str = "exchange.denied",
    extra: dict[str, Any] | None = None,
) -> Problem:
    """Record a denial (decision row and ledger entry, committed) and return its problem.

    Without a contract (open data) the entry names the product asked for, `product_id`. A
    transfer's denial is recorded as `entry_type` "transfer.denied" with its `extra` data.
    """
    entry = record(
        session,
        gateway.signer,
        type=entry_type,
        data={
            **(extra or {}),
            "decision": decision_id,
            "contract": contract.id if contract is not None else None,
            "consumer": subject.id,
            "product": contract.product_id if contract is not None else product_id,
            "purpose": policy_input["purpose"],
            "reasons": [r["code"] for r in result["reasons"]],
            "input_hash": content_hash(policy_input),
            "policy_version": policy_version,
            "exposure": result.get("exposure"),
        },
    )
    _keep_decision(
        session,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        allow=False,
        policy_input=policy_input,
        result=result,
        version=policy_version,
        rows=0,
        entry=entry,
    )
    reasons = result["reasons"]
    first = reasons[0] if reasons else {"code": "DENIED", "title": "Denied", "detail": ""}
    slug, title = (
        UNAVAILABLE.get(first["code"], UNAVAILABLE[None])
        if status in (502, 503)
        else ("policy-denied", "Denied by policy")
    )
    return Problem(
        status,
        slug,
        title,
        "; ".join(r.get("detail") or r["title"] for r in reasons) or first["title"],
        reasons=reasons,
        decision_id=decision_id,
        ledger_seq=entry.seq,
        policy_version=policy_version,
    )


# A 502/503 refusal's problem type: the policy engine's, unless compute or the source failed.
UNAVAILABLE = {
    None: ("policy-unavailable", "Policy engine unavailable"),
    "COMPUTE_FAILED": ("compute-unavailable", "Compute engine unavailable"),
    "SOURCE_UNAVAILABLE": ("data-source-unavailable", "Data source unavailable"),
}


def _keep_decision(
    session: Session,
    *,
    decision_id: str,
    subject: Participant,
    contract: Contract | None,
    allow: bool,
    policy_input: dict[str, Any],
    result: dict[str, Any],
    version: str | None,
    rows: int,
    entry: Entry,
) -> None:
    """Store the decision (input, result, version) beside its ledger entry and commit both."""
    session.add(
        Decision(
            id=decision_id,
            subject_id=subject.id,
            contract_id=contract.id if contract is not None else None,
            allow=allow,
            input=policy_input,
            result=result,
            policy_version=version,
            rows_delivered=rows,
            ledger_seq=entry.seq,
            created_at=clock.now(),
        )
    )
    commit(session)


def _error_result(code: str, title: str, detail: str) -> dict[str, Any]:
    return {
        "allow": False,
        "reasons": [{"code": code, "title": title, "detail": detail}],
        "obligations": {},
    }


def _check_fields(request: ExchangeRequest | OpenExchangeRequest, resource: Resource) -> None:
    """Refuse (422) any field the request names (asked for, grouped or filtered on, aggregated)
    that the resource does not have: before any lock or policy call, and nothing is stored."""
    known = {f["name"] for f in resource.fields}
    named = [("fields", request.fields)]
    if isinstance(request, ExchangeRequest) and request.delivery == "compute":
        named = [("compute", compute.touched_fields(request))]
    for what, names in named:
        unknown = [name for name in names or [] if name not in known]
        if unknown:
            raise unprocessable(
                f"{what}: {len(unknown)} name(s) that are not fields of the resource "
                f"(first: {unknown[0]!r}); it has {sorted(known)}"
            )


def _decide(
    session: Session,
    gateway: Gateway,
    *,
    decision_id: str,
    subject: Participant,
    contract: Contract | None,
    the_input: dict[str, Any],
    delivery: str,
    product_id: str | None = None,
    deny_as: dict[str, Any] | None = None,
    release: bool = False,
) -> tuple[PolicyDecision, str | None, dict[str, Any]]:
    """Return OPA's allowing decision, the policy version that made it, and the arguments a
    later denial is recorded with; raise the recorded denial's problem when OPA refuses, cannot
    answer, or obliges what the gateway cannot honour. `deny_as` (entry_type, extra) records a
    transfer's denials as such. With `release`, the session's transaction (the version's
    activation with it, if new) is committed before OPA is asked: no transaction, and on SQLite
    no write lock, is held across the policy call."""
    version = policy_versions.current(session, gateway.signer, gateway.policy)
    if release:
        commit(session)
    deny = dict(
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        product_id=product_id,
        policy_input=the_input,
        policy_version=version,
        **(deny_as or {}),
    )
    try:
        decision: PolicyDecision = gateway.policy.decide(the_input)
    except PolicyError as exc:
        result = _error_result(exc.code, "No policy decision", str(exc))
        raise _deny(session, gateway, result=result, status=exc.status, **deny) from None
    if not decision.allow:
        raise _deny(session, gateway, result=decision.model_dump(mode="json"), status=403, **deny)
    try:
        obl.check_known(decision.obligations, delivery=delivery)
    except obl.UnsupportedObligation as exc:
        result = _error_result(
            "OBLIGATION_UNSUPPORTED", "Obligation the gateway cannot honour", str(exc)
        )
        raise _deny(session, gateway, result=result, status=403, **deny) from None
    return decision, version, deny


def _watermark(decision: PolicyDecision, decision_id: str, subject: Participant) -> str | None:
    """Return the watermark the decision obliges, else None."""
    if not decision.obligations.get("watermark"):
        return None
    return obl.watermark_for(decision_id, subject.id)


def _rows(
    session: Session,
    gateway: Gateway,
    resource: Resource,
    request: ExchangeRequest | OpenExchangeRequest,
    *,
    fields: list[str],
    decision: PolicyDecision,
    mark: str | None,
    name: str,
    deny: dict[str, Any],
    offset: int = 0,
) -> obl.Delivery:
    """Return the api or file delivery of one page of the resource's rows (from `offset`, at
    most the request's limit or the default page) under the decision's obligations,
    read from where the data lives (gateway/resources/data.py) with the obligations applied on
    the stream. A source that cannot be read is a recorded refusal (`exchange.denied`, reason
    SOURCE_UNAVAILABLE) and a 502 data-source-unavailable: nothing leaves without evidence."""
    if request.delivery not in ("api", "file"):
        raise obl.UnsupportedObligation(f"rows go by api or file, not {request.delivery}")
    try:
        stream = resource_data.open_delivery(
            session,
            gateway,
            resource,
            fields=fields,
            obligations=decision.obligations,
            limit=page_size(request),
            watermark=mark,
            offset=offset,
        )
        out = json_rows(stream)
    except (DataPlaneError, pa.ArrowException, OSError) as exc:
        detail = exc.detail if isinstance(exc, DataPlaneError) else type(exc).__name__
        detail = f"the data of resource {resource.id} could not be read: {detail}"
        result = _error_result("SOURCE_UNAVAILABLE", "Data source unavailable", detail)
        raise _deny(session, gateway, result=result, status=502, **deny) from None
    drop = set(decision.obligations.get("drop") or [])
    kept = [n for n in fields if n not in drop]
    return obl.package(out, delivery=request.delivery, fields=kept, name=name)


def page_size(request: ExchangeRequest | OpenExchangeRequest) -> int:
    """Return the most rows one reply holds for `request`: its limit, else the default page."""
    return request.limit if request.limit is not None else DEFAULT_PAGE_ROWS


def _cursor_key(gateway: Gateway) -> bytes:
    """Return the key cursors are signed with: derived from the gateway's signing key, so every
    process of one gateway accepts the cursors of the others, and nobody else can forge one."""
    return _derived_cursor_key(gateway.private_key)


@functools.lru_cache(maxsize=8)  # by the key object: derived once per signing key (50 µs)
def _derived_cursor_key(private_key) -> bytes:
    raw = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"dsgw exchange cursor v1").derive(raw)


def _cursor_scope(subject: Participant, *, over: str, delivery: str, fields: list[str]) -> str:
    """Return what a cursor is bound to: the consumer, the contract (or open product), the
    delivery and the fields asked, so that it pages only the stream it was issued for."""
    return "|".join(["exchange", subject.id, over, delivery, ",".join(fields)])


def _offset(gateway: Gateway, request: ExchangeRequest | OpenExchangeRequest, scope: str) -> int:
    """Return the row the request's cursor continues at (0 without one); 400 when forged."""
    if request.cursor is None:
        return 0
    return decode_cursor(request.cursor, key=_cursor_key(gateway), scope=scope)


def _next_cursor(
    gateway: Gateway,
    request: ExchangeRequest | OpenExchangeRequest,
    scope: str,
    *,
    offset: int,
    out: obl.Delivery,
) -> str | None:
    """Return the cursor of the next page when this one is full (more rows may follow)."""
    if out.source_rows < page_size(request):
        return None
    return encode_cursor(offset + out.source_rows, key=_cursor_key(gateway), scope=scope)


def _delivered(
    session: Session,
    gateway: Gateway,
    *,
    decision: PolicyDecision,
    version: str | None,
    decision_id: str,
    subject: Participant,
    contract: Contract | None,
    product: Product,
    resource: Resource,
    request: ExchangeRequest | OpenExchangeRequest,
    the_input: dict[str, Any],
    out: obl.Delivery,
    mark: str | None,
    privacy: dict[str, Any] | None = None,
    page: tuple[str, int] | None = None,
) -> ExchangeResult:
    """Record the delivery (ledger entry and decision row, committed); return the reply.

    `page`: for rows, the cursor scope and the row the page starts at."""
    data = _delivery_data(
        decision=decision,
        version=version,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        product=product,
        resource=resource,
        request=request,
        the_input=the_input,
        out=out,
        mark=mark,
        privacy=privacy,
        page=page,
    )
    entry: Entry = record(session, gateway.signer, type="exchange.delivered", data=data)
    _keep_decision(
        session,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        allow=True,
        policy_input=the_input,
        result=decision.model_dump(mode="json"),
        version=version,
        rows=out.source_rows,
        entry=entry,
    )
    return _result(
        gateway, entry, decision_id=decision_id, decision=decision, contract=contract,
        product=product, request=request, out=out, mark=mark, privacy=privacy, page=page,
    )  # fmt: skip


def _delivery_data(
    *,
    decision: PolicyDecision,
    version: str | None,
    decision_id: str,
    subject: Participant,
    contract: Contract | None,
    product: Product,
    resource: Resource,
    request: ExchangeRequest | OpenExchangeRequest,
    the_input: dict[str, Any],
    out: obl.Delivery,
    mark: str | None,
    privacy: dict[str, Any] | None,
    page: tuple[str, int] | None,
) -> dict[str, Any]:
    """Return the data of the delivery's `exchange.delivered` entry (specs/ledger.md)."""
    return {
        "decision": decision_id,
        "contract": contract.id if contract is not None else None,
        "consumer": subject.id,
        "provider": contract.provider_id if contract is not None else product.merchant_id,
        "product": product.id,
        "resource": resource.id,
        "purpose": request.purpose,
        "delivery": request.delivery,
        "fields": out.fields,
        "masked": _masked(decision, out),
        "rows": out.source_rows,
        "content_hash": out.content_hash,
        "watermark": mark,
        "input_hash": content_hash(the_input),
        "policy_version": version,
        "exposure": (decision.model_extra or {}).get("exposure"),
        **({"file": {k: v for k, v in out.file.items() if k != "content"}} if out.file else {}),
        **({"groups": len(out.rows), "privacy": privacy} if privacy is not None else {}),
        **({"offset": page[1]} if page is not None else {}),
    }


def _masked(decision: PolicyDecision, out: obl.Delivery) -> list[str]:
    """Return the delivered fields the decision obliged to mask."""
    return sorted(set(decision.obligations.get("mask") or []) & set(out.fields))


def _result(
    gateway: Gateway,
    entry: Entry,
    *,
    decision_id: str,
    decision: PolicyDecision,
    contract: Contract | None,
    product: Product,
    request: ExchangeRequest | OpenExchangeRequest,
    out: obl.Delivery,
    mark: str | None,
    privacy: dict[str, Any] | None,
    page: tuple[str, int] | None,
) -> ExchangeResult:
    """Return the reply of a recorded delivery, with its receipt."""
    return ExchangeResult(
        exchange_id=decision_id,
        contract_id=contract.id if contract is not None else None,
        product_id=product.id,
        purpose=request.purpose,
        fields=out.fields,
        masked=_masked(decision, out),
        row_count=len(out.rows) if out.file is None else out.source_rows,
        rows=out.rows,
        watermark=mark,
        content_hash=out.content_hash,
        receipt=Receipt(
            seq=entry.seq,
            hash=entry.hash,
            sig=entry.sig,
            kid=entry.kid,
            body=entry.body,
            url=f"/ledger/receipts/{entry.seq}",
        ),
        delivery=request.delivery,
        file=out.file,
        privacy=privacy,
        offset=page[1] if page is not None else 0,
        next_cursor=_next_cursor(gateway, request, page[0], offset=page[1], out=out)
        if page is not None
        else None,
    )


def _refuse_unless_consumer(
    session: Session, gateway: Gateway, *, subject: Participant, contract_id: str
) -> Contract:
    """Return the contract if it is the caller's; else refuse, before any policy input exists,
    an exchange under a contract that is not the caller's: 404 exactly as for an unknown id, so
    the caller learns nothing of the contract.

    The refusal of a real contract is still evidence (`exchange.refused`, committed), naming its
    provider and holder, who may read it; the caller is not a party to it (`requested_by`)."""
    contract = session.get(Contract, contract_id)
    if contract is not None and contract.consumer_id == subject.id:
        return contract
    if contract is not None:
        record(
            session,
            gateway.signer,
            type="exchange.refused",
            data={
                "contract": contract.id,
                "provider": contract.provider_id,
                "holder": contract.holder_id,
                "requested_by": subject.id,
                "reason": "NOT_CONTRACT_CONSUMER",
            },
        )
        commit(session)
    raise not_found("contract", contract_id)


CLAIM_ATTEMPTS = 4  # decisions made again when the claim of the one before no longer held


def exchange(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    request: ExchangeRequest,
    preloaded: "Preloaded | None" = None,
) -> ExchangeResult:
    """Run one exchange; return the delivery with its receipt, or raise the denial's problem.

    Rows (api, file) hold no lock across OPA or the source: the exchange is decided and its
    rows read first, then its quota is claimed and its evidence appended in one short step by
    the sequencer (gateway/evidence/sequencer.py), re-checking what the decision assumed; when
    that no longer holds, it is decided again on what now stands. `preloaded`: the rows
    `preload` read for this request (its first decision reads nothing more)."""
    if request.delivery == "compute":
        return _compute_exchange(session, gateway, subject=subject, request=request)
    loaded = _refuse_unless_consumer(
        session, gateway, subject=subject, contract_id=request.contract_id
    )
    for attempt in range(CLAIM_ATTEMPTS):
        if attempt:
            session.expire_all()  # decide again on what stands now
        result = _exchange_rows(
            session, gateway, subject=subject, request=request, loaded=loaded,
            rows=preloaded.rows if preloaded is not None and not attempt else None,
        )  # fmt: skip
        if result is not None:
            return result
    raise contended(request.contract_id)


def contended(contract_id: str) -> Problem:
    """Return the 409 of an exchange or transfer whose contract changed under every decision."""
    return Problem(
        409,
        "exchange-contended",
        "Exchange contended",
        f"the usage of contract {contract_id} changed under {CLAIM_ATTEMPTS} decisions in a "
        "row; nothing was delivered or metered: retry",
    )


def _exchange_rows(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    request: ExchangeRequest,
    loaded: Contract,
    rows: "_ContractRows | None" = None,
) -> ExchangeResult | None:
    """Decide and deliver one page of rows; None when its claim no longer held (nothing was
    written: decide again). `loaded`: the contract as the consumer check read it (expired, and
    so read again, when the exchange is decided again); `rows`: its product, resource,
    authorisation, offer and dataset as read with it (else read here, in one statement)."""
    # A contract whose term is over is recorded EXPIRED first (its own committed step).
    contract = contracts.current(session, gateway, request.contract_id, loaded=loaded)
    if rows is None or contract is not loaded:
        rows = _exchange_rows_of(session, contract)
    # The embedded dataset's row is kept referenced: the session's identity map holds objects
    # weakly, and reading the rows finds it there instead of asking the database again.
    product, resource, authorisation, stored_offer, _dataset = rows
    _check_fields(request, resource)  # before any policy call
    # An authorisation whose term has passed ends at this use, suspending its products (its own
    # transaction and evidence); the policy then sees the product suspended.
    authorisations.expire_if_over(session, gateway.signer, authorisation)
    offer = Offer.model_validate(stored_offer.terms)
    available = offer.fields if offer.fields is not None else [f["name"] for f in resource.fields]
    fields = request.requested(available)
    scope = _cursor_scope(subject, over=contract.id, delivery=request.delivery, fields=fields)
    offset = _offset(gateway, request, scope)
    decision_id = new_id("dec")
    the_input = policy_input(
        subject=subject,
        request=request,
        fields=fields,
        resource=resource,
        product=product,
        contract=contract,
        offer=offer,
    )
    decision, version, deny = _decide(
        session,
        gateway,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        the_input=the_input,
        delivery=request.delivery,
        release=True,
    )
    mark = _watermark(decision, decision_id, subject)
    out = _rows(
        session,
        gateway,
        resource,
        request,
        fields=fields,
        decision=decision,
        mark=mark,
        name=decision_id,
        deny=deny,
        offset=offset,
    )
    commit(session)  # the sequencer writes on its own connection: hold nothing meanwhile
    page = (scope, offset)
    data = _delivery_data(
        decision=decision, version=version, decision_id=decision_id, subject=subject,
        contract=contract, product=product, resource=resource, request=request,
        the_input=the_input, out=out, mark=mark, privacy=None, page=page,
    )  # fmt: skip
    row = {
        "id": decision_id,
        "subject_id": subject.id,
        "contract_id": contract.id,
        "allow": True,
        "input": the_input,
        "result": decision.model_dump(mode="json"),
        "policy_version": version,
        "rows_delivered": out.source_rows,
        "created_at": clock.now(),
    }

    def keep(_conn: Connection, entry: Entry):
        # The decision row, inserted with the batch's others in one statement.
        return _INSERT_DECISION, {**row, "ledger_seq": entry.seq}

    entry = sequenced.submit(
        gateway,
        type="exchange.delivered",
        data=data,
        claim=_claim(contract, offer, product, subject, rows=out.source_rows),
        after=keep,
    )
    if entry is None:
        return None
    return _result(
        gateway, entry, decision_id=decision_id, decision=decision, contract=contract,
        product=product, request=request, out=out, mark=mark, privacy=None, page=page,
    )  # fmt: skip


_INSERT_DECISION = insert(Decision.__table__)

_ContractRows = tuple[Product, Resource, Authorisation, ProductOffer, EmbeddedDataset | None]


@dataclass(frozen=True)
class Preloaded:
    """What one statement read for an exchange request: the subject, and, when it names an
    existing contract of that subject's, the contract and what it is for. Holding it keeps the
    rows in the session (whose identity map holds them weakly), so the participant check and
    the consumer check find them there instead of asking the database again."""

    participant: Participant | None
    contract: Contract | None
    rows: _ContractRows | None


def preload(session: Session, *, subject_id: str, contract_id: str) -> Preloaded:
    """Read, in one statement, the participant `subject_id` and, if it is that participant's,
    the contract `contract_id` with its product, resource, authorisation, offer and embedded
    dataset. Decides nothing: the checks that follow (the token's participant, the consumer,
    the policy) are made on these rows exactly as on rows read one by one."""
    alone = read_alone(session)  # a read that waits for no writer (SQLite: no turn)
    found = session.execute(
        _preload_statement(), {"preload_subject": subject_id, "preload_contract": contract_id}
    ).one_or_none()
    if alone:
        session.commit()  # the rows stay loaded (expire_on_commit is off)
    if found is None:
        return Preloaded(None, None, None)
    participant, contract, product, resource, authorisation, offer, dataset = found
    if contract is None or None in (product, resource, authorisation, offer):
        return Preloaded(participant, None, None)
    return Preloaded(participant, contract, (product, resource, authorisation, offer, dataset))


@functools.cache
def _preload_statement():
    """Return `preload`'s statement, built once (building it cost more than running it)."""
    return (
        select(Participant, Contract, Product, Resource, Authorisation, ProductOffer,
               EmbeddedDataset)
        .outerjoin(Contract, (Contract.id == bindparam("preload_contract"))
                   & (Contract.consumer_id == Participant.id))
        .outerjoin(Product, Product.id == Contract.product_id)
        .outerjoin(Resource, Resource.id == Product.resource_id)
        .outerjoin(Authorisation, Authorisation.id == Product.authorisation_id)
        .outerjoin(ProductOffer, ProductOffer.id == Contract.offer_id)
        .outerjoin(EmbeddedDataset, EmbeddedDataset.resource_id == Resource.id)
        .where(Participant.id == bindparam("preload_subject"))
    )  # fmt: skip


def _exchange_rows_of(session: Session, contract: Contract) -> _ContractRows:
    """Return the contract's product, resource, authorisation and offer in one statement (with
    the resource's embedded dataset's metadata, if it has one, so that reading it is no second
    statement: gateway/resources/data.py finds it in the session)."""
    found = session.execute(
        select(Product, Resource, Authorisation, ProductOffer, EmbeddedDataset)
        .join(Resource, Resource.id == Product.resource_id)
        .join(Authorisation, Authorisation.id == Product.authorisation_id)
        .join(ProductOffer, ProductOffer.product_id == Product.id)
        .outerjoin(EmbeddedDataset, EmbeddedDataset.resource_id == Resource.id)
        .where(Product.id == contract.product_id, ProductOffer.id == contract.offer_id)
    ).one_or_none()
    if found is None:  # pragma: no cover - the foreign keys keep them
        raise not_found("product", contract.product_id)
    product, resource, authorisation, offer, dataset = found
    return product, resource, authorisation, offer, dataset


def _claim(contract: Contract, offer: Offer, product: Product, subject: Participant, *, rows: int):
    """Return the claim of an exchange of `rows` rows: one conditional update that meters it
    only if what the decision assumed still holds (the contract's state, the product's and the
    consumer's status, the quota left), else changes nothing."""
    statement = _claim_statement(offer.quota_calls is not None, offer.quota_rows is not None)
    values = {
        "claim_contract": contract.id,
        "claim_state": contract.state,
        "claim_product": product.id,
        "claim_product_status": product.status,
        "claim_subject": subject.id,
        "claim_subject_status": subject.status,
        "claim_rows": rows,
        "claim_quota_calls": offer.quota_calls,
        "claim_quota_rows": offer.quota_rows,
    }

    def claim(conn: Connection) -> bool:
        return conn.execute(statement, values).rowcount == 1

    return claim


@functools.cache
def _claim_statement(calls_quota: bool, rows_quota: bool):
    """Return the claim's statement (built once per kind of quota: building costs more than
    running it)."""
    table = Contract.__table__
    rows = bindparam("claim_rows")
    still = [
        table.c.id == bindparam("claim_contract"),
        table.c.state == bindparam("claim_state"),
        exists().where(Product.id == bindparam("claim_product"),
                       Product.status == bindparam("claim_product_status")),
        exists().where(Participant.id == bindparam("claim_subject"),
                       Participant.status == bindparam("claim_subject_status")),
    ]  # fmt: skip
    if calls_quota:
        still.append(table.c.calls_used < bindparam("claim_quota_calls"))
    if rows_quota:
        still += [table.c.rows_used < bindparam("claim_quota_rows"),
                  table.c.rows_used + rows <= bindparam("claim_quota_rows")]  # fmt: skip
    return (
        update(table)
        .where(*still)
        .values(rows_used=table.c.rows_used + rows, calls_used=table.c.calls_used + 1)
    )


def _compute_exchange(
    session: Session, gateway: Gateway, *, subject: Participant, request: ExchangeRequest
) -> ExchangeResult:
    """Run one compute exchange under the contract's lock: its privacy budget is spent in the
    same transaction as its evidence (specs/compute.md)."""
    _refuse_unless_consumer(session, gateway, subject=subject, contract_id=request.contract_id)
    product = products.get(session, contracts.get(session, request.contract_id).product_id)
    resource = resources.get(session, product.resource_id)
    _check_fields(request, resource)  # before any lock or policy call
    # An authorisation whose term has passed ends at this use, suspending its products (its own
    # transaction and evidence); the policy then sees the product suspended.
    authorisations.expire_if_over(
        session, gateway.signer, authorisations.get(session, product.authorisation_id)
    )
    contract = contracts.get(session, request.contract_id, for_update=True)
    contracts.expire_if_due(session, gateway, contract)  # recorded with this exchange's evidence
    _, offer = products.get_offer(session, contract.offer_id)
    # The fields it reads (grouped on, filtered on, aggregated) are the ones judged.
    fields = compute.touched_fields(request)
    decision_id = new_id("dec")
    the_input = policy_input(
        subject=subject,
        request=request,
        fields=fields,
        resource=resource,
        product=product,
        contract=contract,
        offer=offer,
    )
    # The terms, the query and the ε spent (specs/compute.md).
    the_input["compute"] = compute.policy_input(
        session, request=request, offer=offer, contract=contract, subject=subject,
        resource=resource,
    )  # fmt: skip
    decision, version, deny = _decide(
        session,
        gateway,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        the_input=the_input,
        delivery=request.delivery,
    )
    mark = _watermark(decision, decision_id, subject)
    try:
        out, privacy = compute.release(
            session,
            gateway,
            request=request,
            offer=offer,
            resource=resource,
            contract=contract,
            subject=subject,
            obligations=decision.obligations,
            watermark=mark,
        )
    except compute.Refused as exc:
        result = _error_result(exc.code, exc.title, str(exc))
        raise _deny(session, gateway, result=result, status=exc.status, **deny) from None
    contract.rows_used += out.source_rows
    contract.calls_used += 1
    return _delivered(
        session,
        gateway,
        decision=decision,
        version=version,
        decision_id=decision_id,
        subject=subject,
        contract=contract,
        product=product,
        resource=resource,
        request=request,
        the_input=the_input,
        out=out,
        mark=mark,
        privacy=privacy,
    )


# ---------------------------------------------------------------------------------------------
# Open data: L1 public data pulled without a contract, still decided by the policy and recorded.


def _open_fields(session: Session, product: Product, resource: Resource) -> list[str]:
    """Return the fields an open pull may ask for: those the product's offers expose."""
    names: set[str] = set()
    for stored in products.offers_of(session, product.id):
        offered = Offer.model_validate(stored.terms).fields
        if offered is None:
            return [f["name"] for f in resource.fields]
        names |= set(offered)
    return [f["name"] for f in resource.fields if f["name"] in names]


def open_data_usage(session: Session, subject_id: str) -> dict[str, int]:
    """Return what `subject_id` pulled without a contract since the start of the UTC day."""
    now = clock.now()
    since = now - timedelta(
        hours=now.hour, minutes=now.minute, seconds=now.second, microseconds=now.microsecond
    )
    rows, calls = session.execute(
        select(func.coalesce(func.sum(Decision.rows_delivered), 0), func.count()).where(
            Decision.subject_id == subject_id,
            Decision.contract_id.is_(None),
            Decision.allow.is_(True),
            Decision.created_at >= since,
        )
    ).one()
    return {"rows": int(rows), "calls": int(calls)}


def open_exchange(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    product_id: str,
    request: OpenExchangeRequest,
) -> ExchangeResult:
    """Pull open data without a contract; return the delivery and its receipt, or raise.

    The policy decides as for any exchange, with a null contract: only public data (general,
    L1, no personal information) of a listed product, within the subject's open-data quota per
    UTC day. Denials and deliveries are recorded like any other, with contract null.
    """
    product = products.get(session, product_id)
    if not products.visible_to(product, subject):  # a draft is no one else's business
        raise not_found("product", product_id)
    authorisations.expire_if_over(
        session, gateway.signer, authorisations.get(session, product.authorisation_id)
    )
    # One open pull at a time per subject, so its day's usage is read and added to as one.
    fetch(session, Participant, subject.id, kind="participant", for_update=True)
    product = products.get(session, product_id)
    resource = resources.get(session, product.resource_id)
    _check_fields(request, resource)
    fields = request.requested(_open_fields(session, product, resource))
    scope = _cursor_scope(subject, over=product.id, delivery=request.delivery, fields=fields)
    offset = _offset(gateway, request, scope)
    decision_id = new_id("dec")
    the_input = policy_input(
        subject=subject,
        request=request,
        fields=fields,
        resource=resource,
        product=product,
        contract=None,
        offer=None,
        open_data_usage=open_data_usage(session, subject.id),
    )
    decision, version, deny = _decide(
        session,
        gateway,
        decision_id=decision_id,
        subject=subject,
        contract=None,
        product_id=product.id,
        the_input=the_input,
        delivery=request.delivery,
    )
    mark = _watermark(decision, decision_id, subject)
    out = _rows(
        session,
        gateway,
        resource,
        request,
        fields=fields,
        decision=decision,
        mark=mark,
        name=decision_id,
        deny=deny,
        offset=offset,
    )
    return _delivered(
        session,
        gateway,
        decision=decision,
        version=version,
        decision_id=decision_id,
        subject=subject,
        contract=None,
        product=product,
        resource=resource,
        request=request,
        the_input=the_input,
        out=out,
        mark=mark,
        page=(scope, offset),
    )
