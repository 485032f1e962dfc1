"""Period close: metering → rating → invoices, split, journal and signed statements, on the
ledger; reading them back. The arithmetic is `ledger.settlement` (what an auditor re-runs)."""

import json

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.authorisations.models import Authorisation
from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem, conflict, forbidden, not_found, unprocessable
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.participants.models import Participant
from gateway.products.models import ProductOffer
from gateway.settlement.models import (
    CeilingRead,
    CeilingSet,
    InvoiceRead,
    PeriodRead,
    SettlementDocument,
    SettlementPeriod,
    StatementRead,
    Voucher,
    VoucherIssue,
    VoucherRead,
)
from ledger import store as ledger_store
from ledger.settlement import (
    PLATFORM,
    RELEVANT_TYPES,
    SettlementError,
    period_bounds,
    replay,
    sign_statement,
)

READERS = ("admin", "auditor")  # roles that read every period, invoice and statement


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
    books, _ = replay(_bodies(session, through))

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
    commit(session)
    return _read(row, already=False)


def _bodies(session: Session, through: int) -> list[dict]:
    """Return the bodies of the entries settlement reads, up to seq `through`."""
    table = ledger_store.ledger_entries
    rows = session.execute(
        select(table.c.body)
        .where(table.c.type.in_(RELEVANT_TYPES), table.c.seq <= through)
        .order_by(table.c.seq)
    )
    return [json.loads(body) for (body,) in rows]


def _read(row: SettlementPeriod, *, already: bool) -> PeriodRead:
    s = row.summary
    return PeriodRead(
        period=row.period, start=s["start"], end=s["end"], through_seq=row.through_seq,
        invoices=s["invoices"], statements=s["statements"], invoiced_fen=s["invoiced_fen"],
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


def render_html(statement: StatementRead) -> str:
    """Return a statement as a page a person can read."""
    from html import escape

    s = statement.statement

    def yuan(fen: int) -> str:
        return f"¥{fen // 100:,}.{fen % 100:02d}"

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
