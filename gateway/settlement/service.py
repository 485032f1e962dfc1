"""Period close: metering → rating → invoices, split, journal and signed statements, on the
ledger; reading them back. The arithmetic is `ledger.settlement` (what an auditor re-runs)."""

import copy
import json
from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.authorisations.models import Authorisation
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem, conflict, forbidden, not_found, unprocessable
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.exchanges.models import Decision
from gateway.negotiation.models import Contract
from gateway.participants.models import Participant
from gateway.policy.client import PolicyError
from gateway.products.models import ProductOffer
from gateway.settlement.models import (
    STATEMENT_PARTY_AT,
    CeilingRead,
    CeilingSet,
    CreditNoteRead,
    InvoiceRead,
    PeriodRead,
    RefundRead,
    RefundRequest,
    SettlementDocument,
    SettlementPeriod,
    StatementRead,
    StatementSummary,
    Voucher,
    VoucherIssue,
    VoucherRead,
)
from gateway.transfers.models import Transfer
from ledger import store as ledger_store
from ledger.settlement import (
    CONTEXT_TYPES,
    PLATFORM,
    RELEVANT_TYPES,
    USAGE_TYPES,
    Books,
    SettlementError,
    period_bounds,
    replay,
    sign_statement,
)

READERS = ("admin", "auditor")  # roles that read every period, invoice and statement
POLICY_PACKAGE = "dsgw.settlement"  # policies/dsgw/settlement.rego: who may refund what


def close(session: Session, gateway: Gateway, *, period: str, by: Participant) -> PeriodRead:
    """Close a period (admin): record per contract an invoice, per party a signed statement and
    the period's `settlement.closed`, in one transaction. A closed period is returned as it is."""
    if "admin" not in by.roles:
        raise forbidden(f"only the platform admin closes a period; {by.id} is not one")
    try:
        start, end = period_bounds(period)
    except SettlementError as exc:
        raise Problem(422, "invalid-period", "Invalid period", str(exc)) from None
    existing = session.get(SettlementPeriod, period)
    if existing is not None:
        return _read(existing, already=True)
    if clock.rfc3339(clock.now()) < end:
        raise conflict(
            "period-open",
            "Period not over",
            f"period {period} ends at {end}; it can be closed from then on",
        )
    later = session.scalars(
        select(SettlementPeriod.period).where(SettlementPeriod.period > period).limit(1)
    ).first()
    if later is not None:
        raise conflict(
            "period-out-of-order",
            "Period closed out of order",
            f"period {later} is closed already; periods close in order, so {period}'s usage "
            f"is in the next closed period",
        )
    row = SettlementPeriod(
        period=period, through_seq=0, ledger_seq=0, summary={}, closed_by=by.id,
        closed_at=clock.now(),
    )  # fmt: skip
    session.add(row)
    try:
        session.flush()  # a concurrent close of the same period stops here
    except IntegrityError:
        session.rollback()
        return _read(session.get(SettlementPeriod, period), already=True)
    conn = session.connection()
    through, _ = ledger_store.head(conn)
    books = _books(session, period, through)

    def terms_of(_contract: str, offer_id: str) -> dict | None:
        offer = session.get(ProductOffer, offer_id)
        return offer.terms if offer is not None else None

    try:
        result = books.close(period, through_seq=through, terms_of=terms_of)
    except SettlementError as exc:
        session.rollback()
        raise conflict("settlement-inconsistent", "Settlement inconsistent", str(exc)) from None
    hashes = {}
    for invoice in result.invoices:
        entry = record(session, gateway.signer, type="settlement.invoice", data=invoice)
        readers = sorted(
            {invoice["consumer"], invoice["provider"]}
            | {s["party"] for s in invoice["shares"].values()} - {PLATFORM}
        )
        session.add(
            SettlementDocument(
                id=invoice["invoice"], period=period, kind="invoice", readers=readers,
                body=invoice, ledger_seq=entry.seq,
            )
        )  # fmt: skip
    for note in result.credit_notes:
        entry = record(session, gateway.signer, type="settlement.credit-note", data=note)
        readers = sorted(
            {note["consumer"], note["provider"]}
            | {v["issuer"] for v in note["vouchers"]}
            | {s["party"] for s in note["shares"].values()} - {PLATFORM}
        )
        session.add(
            SettlementDocument(
                id=note["credit_note"], period=period, kind="credit-note", readers=readers,
                body=note, ledger_seq=entry.seq,
            )
        )  # fmt: skip
    for statement in result.statements:
        data = sign_statement(statement, gateway.signer.sign, gateway.signer.kid)
        hashes[statement["statement"]] = data["hash"]
        entry = record(session, gateway.signer, type="settlement.statement", data=data)
        session.add(
            SettlementDocument(
                id=statement["statement"], period=period, kind="statement",
                readers=[statement["party"]], body=data, ledger_seq=entry.seq,
            )
        )  # fmt: skip
    for kind, items in (("voucher.redeemed", result.redemptions),
                        ("voucher.expired", result.expiries)):  # fmt: skip
        for item in items:
            record(session, gateway.signer, type=kind, data=item)
            voucher = session.get(Voucher, item["voucher"], with_for_update=True)
            if voucher is not None and kind == "voucher.redeemed":
                voucher.balance_fen = item["balance_fen"]
            elif voucher is not None:
                voucher.status = "expired"
    summary = result.summary(hashes)
    entry = record(session, gateway.signer, type="settlement.closed", data={**summary, "by": by.id})
    row.through_seq, row.ledger_seq, row.summary = through, entry.seq, summary
    session.add(
        SettlementDocument(
            id=f"books_{period}",
            period=period,
            kind="books",
            readers=[],
            body=books.to_state(),
            ledger_seq=entry.seq,
        )
    )  # fmt: skip: the state the next close starts from
    commit(session)
    return _read(row, already=False)


_BATCH = 10_000  # entries read per query by a close


def _bodies(
    session: Session, through: int, *, after: int = 0, types: tuple = RELEVANT_TYPES
) -> Iterator[dict]:
    """Yield, in seq order, the bodies of the entries of `types` with after < seq <= through,
    `_BATCH` per query (keyset on seq, the ledger's primary key): memory stays flat. The type
    is compared through lower() (types are lower-case) so that no engine picks the type index
    and sorts every matching entry of the ledger for each batch: the seq range is read in
    order, once."""
    table = ledger_store.ledger_entries
    cursor = after
    while True:
        rows = session.execute(
            select(table.c.seq, table.c.body)
            .where(
                func.lower(table.c.type).in_(types), table.c.seq > cursor, table.c.seq <= through
            )
            .order_by(table.c.seq)
            .limit(_BATCH)
        ).all()
        for _, body in rows:
            yield json.loads(body)
        if len(rows) < _BATCH:
            return
        cursor = int(rows[-1][0])


def _books(session: Session, period: str, through: int) -> Books:
    """Return the settlement books up to seq `through`: the state the last close kept, fed the
    entries after its `through_seq` (a close reads each entry once, not the whole ledger every
    period); from the start of the ledger for the first close, or when the last close kept no
    state (closed before it did: its earlier closes are recomputed)."""
    last = session.scalars(
        select(SettlementPeriod)
        .where(SettlementPeriod.period < period)
        .order_by(SettlementPeriod.period.desc())
        .limit(1)
    ).first()
    kept = session.get(SettlementDocument, f"books_{last.period}") if last else None
    if last is not None and kept is None:
        return replay(list(_bodies(session, through)))[0]
    books = Books.from_state(copy.deepcopy(kept.body)) if kept is not None else Books()
    after = last.through_seq if last is not None else 0
    for body in _bodies(session, through, after=after, types=(*USAGE_TYPES, *CONTEXT_TYPES)):
        books.add(body)
    return books


def _read(row: SettlementPeriod, *, already: bool) -> PeriodRead:
    s = row.summary
    return PeriodRead(
        period=row.period, start=s["start"], end=s["end"], through_seq=row.through_seq,
        invoices=s["invoices"], statements=s["statements"], invoiced_fen=s["invoiced_fen"],
        credit_notes=s.get("credit_notes", []), refunded_fen=s.get("refunded_fen", 0),
        vouchers_fen=s.get("vouchers_fen", 0),
        ceiling_deducted_fen=s.get("ceiling_deducted_fen", 0),
        ceiling_carried_fen=s.get("ceiling_carried_fen", 0),
        debits_fen=s["debits_fen"], credits_fen=s["credits_fen"], closed_at=row.closed_at,
        closed_by=row.closed_by, ledger_seq=row.ledger_seq, already_closed=already,
    )  # fmt: skip


def get_period(session: Session, *, period: str, viewer: Participant) -> PeriodRead:
    """Return a closed period (admin, auditor), else 404."""
    if not set(READERS) & set(viewer.roles):
        raise forbidden(f"only the platform admin and auditors read a period; {viewer.id} is not")
    row = session.get(SettlementPeriod, period)
    if row is None:
        raise not_found("settlement period", period)
    return _read(row, already=False)


def _document(session: Session, ident: str, kind: str, viewer: Participant) -> SettlementDocument:
    """Return the invoice or statement if the viewer may read it; 404 otherwise (a stranger
    learns nothing of it)."""
    doc = session.get(SettlementDocument, ident)
    if (
        doc is None
        or doc.kind != kind
        or not (set(READERS) & set(viewer.roles) or viewer.id in doc.readers)
    ):
        raise not_found(kind, ident)
    return doc


def get_invoice(session: Session, *, invoice_id: str, viewer: Participant) -> InvoiceRead:
    """Return an invoice to its contract's parties, the split's parties, admin and auditors."""
    doc = _document(session, invoice_id, "invoice", viewer)
    return InvoiceRead(
        **{k: v for k, v in doc.body.items() if k != "terms"}, ledger_seq=doc.ledger_seq
    )


def get_statement(session: Session, *, statement_id: str, viewer: Participant) -> StatementRead:
    """Return a statement to its party, admin and auditors."""
    doc = _document(session, statement_id, "statement", viewer)
    return StatementRead(**doc.body, ledger_seq=doc.ledger_seq)


def list_statements(
    session: Session,
    *,
    viewer: Participant,
    period: str | None,
    party: str | None,
    offset: int,
    limit: int,
) -> list[StatementSummary]:
    """Return the statements `viewer` may read (its own; every one to the admin and auditors),
    of one period or party if given, newest period first, parties in id order within one."""
    query = select(SettlementDocument).where(SettlementDocument.kind == "statement")
    if period is not None:
        query = query.where(SettlementDocument.period == period)
    if not set(READERS) & set(viewer.roles):
        if party not in (None, viewer.id):
            return []  # a party reads its own statements only: another's list is empty
        party = viewer.id
    if party is not None:
        # the party is the id's tail (stm_<period>_<party>), its only reader besides READERS
        query = query.where(func.substr(SettlementDocument.id, STATEMENT_PARTY_AT) == party)
    query = query.order_by(SettlementDocument.period.desc(), SettlementDocument.id)
    return [
        StatementSummary(
            id=doc.id,
            party=doc.body["statement"]["party"],
            period=doc.period,
            owes_fen=doc.body["statement"]["owes_fen"],
            earns_fen=doc.body["statement"]["earns_fen"],
            ledger_seq=doc.ledger_seq,
        )  # fmt: skip
        for doc in session.execute(query.offset(offset).limit(limit)).scalars()
    ]


def render_html(statement: StatementRead) -> str:
    """Return a statement as a page a person can read."""
    from html import escape

    s = statement.statement

    def yuan(fen: int) -> str:
        sign, fen = ("-", -fen) if fen < 0 else ("", fen)  # a credit note's lines are negative
        return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"

    rows = "".join(
        f"<tr><td>{escape(x.invoice)}</td><td>{escape(x.contract)}</td><td>{escape(x.role)}</td>"
        f"<td style='text-align:right'>{yuan(x.amount_fen)}</td></tr>"
        for x in s.lines
    )
    ceilings = "".join(
        f"<p>Ceiling under {escape(str(c.get('authorisation')))}: "
        f"{yuan(int(c.get('ceiling_fen') or 0)) if c.get('ceiling_fen') is not None else 'none'}"
        f"; income {yuan(int(c.get('income_fen', 0)))}, above the ceiling "
        f"{yuan(int(c.get('excess_fen', 0)))}; carried in {yuan(int(c.get('carried_in_fen', 0)))}"
        f", deducted {yuan(int(c.get('deducted_fen', 0)))}, carried into the next period "
        f"{yuan(int(c.get('carried_out_fen', 0)))}.</p>"
        for c in s.ceilings
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Statement {escape(s.statement)}</title></head><body>"
        f"<h1>Statement {escape(s.statement)}</h1>"
        f"<p>Party {escape(s.party)}, period {escape(s.period)} ({escape(s.start)} to "
        f"{escape(s.end)})</p>"
        "<table><tr><th>Invoice</th><th>Contract</th><th>Role</th><th>Amount</th></tr>"
        f"{rows}</table><p>Owes {yuan(s.owes_fen)}; earns {yuan(s.earns_fen)}.</p>"
        f"{ceilings}"
        f"<p>SHA-256 {escape(statement.hash)}, signed by {escape(statement.kid)} "
        f"(ledger entry {statement.ledger_seq}).</p></body></html>"
    )


def set_ceiling(
    session: Session,
    gateway: Gateway,
    *,
    authorisation_id: str,
    body: CeilingSet,
    holder: Participant,
) -> CeilingRead:
    """Set (or change) the ceiling on the operator's income per period under an authorisation
    (its holder only): `settlement.ceiling-set`. It rules from `from_period` on, which must be
    after the last closed period; income above it is carried into the next period."""
    authorisation = session.get(Authorisation, authorisation_id)
    if authorisation is None or holder.id not in (
        authorisation.holder_id,
        authorisation.operator_id,
    ):
        raise not_found("authorisation", authorisation_id)
    if holder.id != authorisation.holder_id:
        raise forbidden(
            f"only the holder {authorisation.holder_id} sets the ceiling on the operator's "
            f"income under {authorisation_id}"
        )
    if authorisation.status != "active":
        raise conflict(
            "authorisation-not-active",
            "Authorisation not active",
            f"authorisation {authorisation_id} is {authorisation.status}",
        )
    from_period = body.from_period or clock.now().strftime("%Y-%m")
    try:
        period_bounds(from_period)
    except SettlementError as exc:
        raise Problem(422, "invalid-period", "Invalid period", str(exc)) from None
    last = session.scalars(
        select(SettlementPeriod.period).order_by(SettlementPeriod.period.desc()).limit(1)
    ).first()
    if last is not None and from_period <= last:
        raise conflict(
            "period-closed",
            "Period closed",
            f"period {last} is closed; a ceiling rules from a later period on",
        )
    data = {
        "authorisation": authorisation.id,
        "holder": authorisation.holder_id,
        "operator": authorisation.operator_id,
        "ceiling_fen": body.ceiling_fen,
        "from_period": from_period,
    }
    entry = record(session, gateway.signer, type="settlement.ceiling-set", data=data)
    commit(session)
    return CeilingRead(
        authorisation_id=authorisation.id, holder_id=authorisation.holder_id,
        operator_id=authorisation.operator_id, ceiling_fen=body.ceiling_fen,
        from_period=from_period, ledger_seq=entry.seq,
    )  # fmt: skip


def issue_voucher(
    session: Session, gateway: Gateway, *, body: VoucherIssue, issuer: Participant
) -> VoucherRead:
    """Issue a data voucher (数据券) to an enterprise (voucher issuers only): `voucher.issued`."""
    if "voucher_issuer" not in issuer.roles:
        raise forbidden(f"only a voucher issuer issues data vouchers; {issuer.id} is not one")
    enterprise = session.get(Participant, body.enterprise_id)
    if enterprise is None or enterprise.status != "active" or "consumer" not in enterprise.roles:
        raise unprocessable(
            f"enterprise_id: {body.enterprise_id} is not an active participant with the role "
            "consumer"
        )
    now = clock.now()
    not_before = body.not_before or now
    if body.not_after <= not_before:
        raise unprocessable("not_after must be in the future and after not_before")
    voucher_id = new_id("vch")
    terms = {
        "voucher": voucher_id,
        "issuer": issuer.id,
        "enterprise": enterprise.id,
        "amount_fen": body.amount_fen,
        "not_before": clock.rfc3339(clock.as_utc(not_before)),
        "not_after": clock.rfc3339(clock.as_utc(body.not_after)),
        "grades": sorted(set(body.grades)) if body.grades is not None else None,
        "domains": sorted(set(body.domains)) if body.domains is not None else None,
        "max_share_percent": body.max_share_percent,
    }
    entry = record(session, gateway.signer, type="voucher.issued", data=terms)
    voucher = Voucher(
        id=voucher_id, issuer_id=issuer.id, enterprise_id=enterprise.id, terms=terms,
        balance_fen=body.amount_fen, status="active", ledger_seq=entry.seq, created_at=now,
    )  # fmt: skip
    session.add(voucher)
    commit(session)
    return _voucher_read(voucher)


def _voucher_read(voucher: Voucher) -> VoucherRead:
    t = voucher.terms
    return VoucherRead(
        id=voucher.id, issuer_id=voucher.issuer_id, enterprise_id=voucher.enterprise_id,
        amount_fen=t["amount_fen"], not_before=t["not_before"], not_after=t["not_after"],
        grades=t["grades"], domains=t["domains"], max_share_percent=t["max_share_percent"],
        balance_fen=voucher.balance_fen, status=voucher.status, ledger_seq=voucher.ledger_seq,
    )  # fmt: skip


def get_voucher(session: Session, *, voucher_id: str, viewer: Participant) -> VoucherRead:
    """Return a voucher to its issuer, its enterprise, admin and auditors; else 404."""
    voucher = session.get(Voucher, voucher_id)
    if voucher is None or not (
        set(READERS) & set(viewer.roles) or viewer.id in (voucher.issuer_id, voucher.enterprise_id)
    ):
        raise not_found("voucher", voucher_id)
    return _voucher_read(voucher)


# --- refunds (specs/settlement.md §11) ---------------------------------------------------------

# The status and problem of each reason the policy gives against a refund, most telling first.
_REFUSALS = {
    "UNKNOWN_CONTRACT": (404, "unknown-contract", "Unknown contract"),
    "NOT_THE_MERCHANT": (403, "not-the-merchant", "Not the contract's merchant"),
    "SUBJECT_INACTIVE": (403, "forbidden", "Participant not active"),
    "NOT_INVOICED": (409, "not-invoiced", "Nothing charged yet"),
    "OVER_REFUND": (409, "over-refund", "Refund above the charge"),
    "AMOUNT_INVALID": (422, "invalid-request", "Refund amount invalid"),
}


def _refunded(session: Session, invoice: SettlementDocument) -> int:
    """Return the fen refunded so far of a closed invoice (its refunds' sum)."""
    docs = session.scalars(
        select(SettlementDocument).where(
            SettlementDocument.kind == "refund", SettlementDocument.period == invoice.period
        )
    )
    return sum(int(d.body["amount_fen"]) for d in docs if d.body["invoice"] == invoice.id)


def _delivery_seq(session: Session, contract: Contract, delivery_id: str) -> int | None:
    """Return the seq of the ledger entry of a delivery under the contract (an exchange's
    `exchange.delivered`, a transfer's `transfer.completed`), None if there is none."""
    if delivery_id.startswith("dec_"):
        decision = session.get(Decision, delivery_id)
        ok = decision is not None and decision.allow and decision.contract_id == contract.id
        return decision.ledger_seq if ok else None
    transfer = session.get(Transfer, delivery_id)
    ok = transfer is not None and transfer.contract_id == contract.id
    return transfer.completed_seq if ok else None


def _invoice_of(
    session: Session, contract: Contract, body: RefundRequest
) -> tuple[SettlementDocument | None, int | None]:
    """Return the closed invoice the refund is of (None: none, so nothing was charged yet) and
    the delivery's seq when it names one; raise 404 for a delivery the contract never had."""
    if body.invoice_id is not None:
        doc = session.get(SettlementDocument, body.invoice_id, with_for_update=True)
        ok = doc is not None and doc.kind == "invoice" and doc.body["contract"] == contract.id
        return (doc if ok else None), None
    seq = _delivery_seq(session, contract, body.delivery_id)
    if seq is None:
        raise not_found("delivery", body.delivery_id)
    docs = session.scalars(
        select(SettlementDocument).where(
            SettlementDocument.kind == "invoice",
            SettlementDocument.id.like(f"inv\\_%\\_{contract.id}", escape="\\"),
        )
    )
    for doc in docs:
        if doc.body["contract"] == contract.id and seq in doc.body["usage"]["entries"]:
            return session.get(SettlementDocument, doc.id, with_for_update=True), seq
    return None, seq


def _refund_refused(
    session: Session,
    gateway: Gateway,
    *,
    body: RefundRequest,
    by: Participant,
    problem: Problem,
    reasons: list[str],
) -> Problem:
    """Record a refused refund (`settlement.refund-refused`, committed); return the problem."""
    session.rollback()
    record(
        session,
        gateway.signer,
        type="settlement.refund-refused",
        data={
            "by": by.id,
            "contract": body.contract_id,
            "invoice": body.invoice_id,
            "delivery": body.delivery_id,
            "amount_fen": body.amount_fen,
            "problem": problem.slug,
            "status": problem.status,
            "reasons": reasons,
        },
    )
    commit(session)
    return problem


def refund(
    session: Session, gateway: Gateway, *, body: RefundRequest, by: Participant
) -> RefundRead:
    """Refund a consumer part of a closed invoice (the contract's merchant or the admin, as the
    policy decides; never more than the invoice charged net of earlier refunds): the entry
    `settlement.refund`, whose credit note the next close records. A refusal is recorded
    (`settlement.refund-refused`) and is a problem: 404 unknown contract or delivery, 403 not
    the merchant, 409 not invoiced or over-refund."""
    contract = session.get(Contract, body.contract_id)
    try:
        invoice, seq = _invoice_of(session, contract, body) if contract else (None, None)
    except Problem as problem:
        raise _refund_refused(
            session, gateway, body=body, by=by, problem=problem, reasons=["UNKNOWN_DELIVERY"]
        ) from None
    refunded = _refunded(session, invoice) if invoice is not None else 0
    policy_input = {
        "now": clock.rfc3339(clock.now()),
        "action": "refund",
        "actor": {"id": by.id, "status": by.status, "roles": list(by.roles)},
        "contract": (
            {"id": contract.id, "provider": contract.provider_id, "consumer": contract.consumer_id}
            if contract is not None
            else None
        ),
        "invoice": (
            {
                "id": invoice.id,
                "total_fen": int(invoice.body["total_fen"]),
                "refunded_fen": refunded,
            }
            if invoice is not None
            else None
        ),  # fmt: skip
        "amount_fen": body.amount_fen,
    }
    try:
        decision = gateway.policy.decide(policy_input, package=POLICY_PACKAGE)
    except PolicyError as exc:
        session.rollback()
        raise Problem(
            503, "policy-unavailable", "Policy decision unavailable", str(exc)[:500]
        ) from None
    if not decision.allow:
        codes = [r.code for r in decision.reasons]
        first = next((c for c in _REFUSALS if c in codes), None)
        status, slug, title = _REFUSALS.get(first, (403, "forbidden", "Refund refused"))
        detail = "; ".join(r.detail for r in decision.reasons)[:1000]
        problem = Problem(status, slug, title, detail, reasons=codes)
        raise _refund_refused(session, gateway, body=body, by=by, problem=problem, reasons=codes)
    refund_id = new_id("rfd")
    data = {
        "refund": refund_id,
        "invoice": invoice.id,
        "period": invoice.period,
        "contract": contract.id,
        "consumer": contract.consumer_id,
        "provider": contract.provider_id,
        "delivery": body.delivery_id,
        "delivery_seq": seq,
        "amount_fen": body.amount_fen,
        "reason": body.reason,
        "by": by.id,
    }
    entry = record(session, gateway.signer, type="settlement.refund", data=data)
    doc = SettlementDocument(
        id=refund_id, period=invoice.period, kind="refund",
        readers=sorted({contract.consumer_id, contract.provider_id}), body=data,
        ledger_seq=entry.seq,
    )  # fmt: skip
    session.add(doc)
    commit(session)
    return _refund_read(
        session, doc, left=int(invoice.body["total_fen"]) - refunded - body.amount_fen
    )


def _refund_read(
    session: Session, doc: SettlementDocument, *, left: int | None = None
) -> RefundRead:
    d = doc.body
    if left is None:
        invoice = session.get(SettlementDocument, d["invoice"])
        left = int(invoice.body["total_fen"]) - _refunded(session, invoice)
    note = session.scalars(
        select(SettlementDocument.id).where(
            SettlementDocument.kind == "credit-note",
            SettlementDocument.id.like(f"crn\\_%\\_{doc.id}", escape="\\"),
        )
    ).first()
    return RefundRead(
        id=doc.id, invoice_id=d["invoice"], contract_id=d["contract"], consumer_id=d["consumer"],
        provider_id=d["provider"], delivery_id=d["delivery"], amount_fen=d["amount_fen"],
        reason=d["reason"], by=d["by"], refundable_fen=left, credit_note_id=note,
        ledger_seq=doc.ledger_seq,
    )  # fmt: skip


def get_refund(session: Session, *, refund_id: str, viewer: Participant) -> RefundRead:
    """Return a refund to its contract's parties, admin and auditors; else 404."""
    return _refund_read(session, _document(session, refund_id, "refund", viewer))


def get_credit_note(
    session: Session, *, credit_note_id: str, viewer: Participant
) -> CreditNoteRead:
    """Return a credit note to the parties it names, admin and auditors; else 404."""
    doc = _document(session, credit_note_id, "credit-note", viewer)
    return CreditNoteRead(**doc.body, ledger_seq=doc.ledger_seq)
