"""The yearly disclosure: every authorisation in force and every product listed in a year,
with the fees actually charged (from the settlement's closed periods of the year: invoices,
vouchers, refunds), the contracts finalised and the exchanges delivered.

It reads only what the other services wrote; it changes nothing and records nothing.
"""

import html
import json
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gateway.authorisations.models import Authorisation
from gateway.core import clock
from gateway.disclosure.models import (
    DisclosedAuthorisation,
    DisclosedProduct,
    DisclosedResource,
    Disclosure,
    Fees,
    Party,
    SettlementCoverage,
)
from gateway.exchanges.models import Decision
from gateway.negotiation.models import Contract
from gateway.participants.models import Participant
from gateway.products.models import Product, ProductOffer
from gateway.resources.models import Resource
from gateway.settlement.models import SettlementDocument, SettlementPeriod
from ledger import parse_rfc3339
from ledger import store as ledger_store


def _party(session: Session, participant_id: str) -> Party:
    p = session.get(Participant, participant_id)
    return Party(id=p.id, name=p.name, uscc=p.uscc)


def _resource(session: Session, resource_id: str) -> DisclosedResource:
    r = session.get(Resource, resource_id)
    return DisclosedResource(id=r.id, code=r.code, name=r.name, grade=r.grade, level=r.level)


def _fees(session: Session, product_id: str, start: datetime, end: datetime) -> Fees:
    contracts = list(
        session.execute(
            select(Contract).where(
                Contract.product_id == product_id,
                Contract.gateway_signature.is_not(None),
                Contract.created_at >= start,
                Contract.created_at < end,
            )
        ).scalars()
    )
    exchanges, rows = session.execute(
        select(func.count(Decision.id), func.coalesce(func.sum(Decision.rows_delivered), 0))
        .join(Contract, Contract.id == Decision.contract_id)
        .where(
            Contract.product_id == product_id,
            Decision.allow.is_(True),
            Decision.created_at >= start,
            Decision.created_at < end,
        )
    ).one()
    return Fees(
        contracts=len(contracts),
        contract_fees_fen=sum(int(c.document.get("price_fen", 0)) for c in contracts),
        exchanges=int(exchanges),
        rows_delivered=int(rows),
    )


def _settled(session: Session, year: int) -> tuple[SettlementCoverage, dict[str, dict[str, int]]]:
    """Return which months of the year are closed, and per product what their invoices charged
    (`invoices`, `charged_fen`, `voucher_fen`) and their credit notes refunded."""
    months = [f"{year:04d}-{m:02d}" for m in range(1, 13)]
    closed = list(
        session.scalars(
            select(SettlementPeriod.period)
            .where(SettlementPeriod.period.in_(months))
            .order_by(SettlementPeriod.period)
        )
    )
    coverage = SettlementCoverage(
        closed_periods=closed,
        open_periods=[m for m in months if m not in closed],
        complete=months[-1] in closed,
        publish_by=f"{year + 1:04d}-03-31",
    )
    fees: dict[str, dict[str, int]] = {}
    docs = session.scalars(
        select(SettlementDocument)
        .where(
            SettlementDocument.kind.in_(("invoice", "credit-note")),
            SettlementDocument.period.in_(closed),
        )
        .order_by(SettlementDocument.id)
    )
    for doc in docs:
        body = doc.body
        if doc.kind == "invoice":
            f = fees.setdefault(body["product"], {})
            f["invoices"] = f.get("invoices", 0) + 1
            f["charged_fen"] = f.get("charged_fen", 0) + int(body["total_fen"])
            f["voucher_fen"] = f.get("voucher_fen", 0) + int(body.get("voucher_fen", 0))
        else:
            invoice = session.get(SettlementDocument, body["invoice"])
            f = fees.setdefault(invoice.body["product"], {})
            f["refunded_fen"] = f.get("refunded_fen", 0) + int(body["amount_fen"])
    for f in fees.values():
        f["net_fen"] = f.get("charged_fen", 0) - f.get("refunded_fen", 0)
    return coverage, fees


# The product moves that enter or leave the state `listed` (gateway/products/states.py).
_LISTING_MOVES = ("product.listed", "product.reinstated", "product.suspended", "product.delisted")


def listed_during(session: Session, start: datetime, end: datetime) -> dict[str, datetime]:
    """Return the products that were listed at some moment in [start, end), each with the time
    it was first listed; drafts and products only ever in review are never among them.

    The ledger is the history: each move into `listed` opens a period and each move out of it
    closes one, so a product suspended or delisted since still counts for the year it was listed.
    """
    rows = session.execute(
        select(ledger_store.ledger_entries.c.body)
        .where(ledger_store.ledger_entries.c.type.in_(_LISTING_MOVES))
        .order_by(ledger_store.ledger_entries.c.seq)
    ).scalars()
    first: dict[str, datetime] = {}
    since: dict[str, datetime] = {}  # the products listed now, since when
    found: set[str] = set()
    for body in rows:
        entry = json.loads(body)
        data, at = entry["data"], parse_rfc3339(entry["time"])
        product = data.get("product")
        if not isinstance(product, str) or at >= end:
            continue
        if data.get("state") == "listed":
            first.setdefault(product, at)
            since.setdefault(product, at)
        elif data.get("from") == "listed" and product in since:
            if since.pop(product) < end and at > start:
                found.add(product)
    found |= set(since)  # still listed at `end` (the opening move is before it)
    return {product: first[product] for product in found}


def build(session: Session, *, year: int, publisher: str) -> Disclosure:
    """Return the disclosure of `year` (UTC calendar year)."""
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    authorisations = session.execute(
        select(Authorisation)
        .where(
            Authorisation.not_before < end,
            Authorisation.created_at < end,
            Authorisation.not_after >= start,
            or_(Authorisation.ended_at.is_(None), Authorisation.ended_at >= start),
        )
        .order_by(Authorisation.created_at, Authorisation.id)
    ).scalars()
    disclosed_auz = [
        DisclosedAuthorisation(
            id=a.id,
            holder=_party(session, a.holder_id),
            operator=_party(session, a.operator_id),
            resources=[_resource(session, r) for r in a.resource_ids],
            product_kinds=a.product_kinds or [],
            not_before=a.not_before,
            not_after=a.not_after,
            fee_cap_fen=a.fee_cap_fen,
            revenue_share=a.revenue_share,
            security_obligations=a.security_obligations or [],
            status=a.status,
            ended_at=a.ended_at,
        )
        for a in authorisations
    ]
    listed = listed_during(session, start, end)
    products = session.execute(
        select(Product).where(Product.id.in_(list(listed))).order_by(Product.created_at, Product.id)
    ).scalars()
    coverage, settled = _settled(session, year)
    disclosed_products = []
    for p in products:
        offers = session.execute(
            select(ProductOffer).where(ProductOffer.product_id == p.id).order_by(ProductOffer.id)
        ).scalars()
        disclosed_products.append(
            DisclosedProduct(
                id=p.id,
                name=p.name,
                merchant=_party(session, p.merchant_id),
                authorisation_id=p.authorisation_id,
                resource=_resource(session, p.resource_id),
                delivery_modes=p.delivery_modes,
                public_interest=p.public_interest,
                status=p.status,
                listed_at=listed[p.id],
                offer_prices_fen=[int(o.terms.get("price_fen", 0)) for o in offers],
                fees=_fees(session, p.id, start, end).model_copy(update=settled.get(p.id, {})),
            )
        )
    return Disclosure(
        year=year,
        generated_at=clock.now(),
        publisher=publisher,
        period={"from": start, "until": end},
        authorisations=disclosed_auz,
        products=disclosed_products,
        totals={
            "authorisations": len(disclosed_auz),
            "products": len(disclosed_products),
            "contracts": sum(p.fees.contracts for p in disclosed_products),
            "contract_fees_fen": sum(p.fees.contract_fees_fen for p in disclosed_products),
            "exchanges": sum(p.fees.exchanges for p in disclosed_products),
            "rows_delivered": sum(p.fees.rows_delivered for p in disclosed_products),
            **{
                key: sum(getattr(p.fees, key) for p in disclosed_products)
                for key in ("charged_fen", "voucher_fen", "refunded_fen", "net_fen")
            },
        },
        settlement=coverage,
    )


def _yuan(fen: int) -> str:
    sign, fen = ("-", -fen) if fen < 0 else ("", fen)  # a credit note's lines are negative
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    if not rows:
        return f"<table><tr>{head}</tr><tr><td colspan='{len(headers)}'>none</td></tr></table>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _who(party: Party) -> str:
    return f"{party.name} ({party.uscc})"


def render_html(disclosure: Disclosure) -> str:
    """Return the disclosure as a self-contained HTML page a person can read (values escaped)."""
    d = disclosure
    authorisations = _table(
        [
            "Authorisation",
            "Holder",
            "Operator",
            "Resources",
            "Term",
            "Fee cap",
            "Revenue share",
            "Product kinds",
            "Security obligations",
            "Status",
        ],
        [
            [
                a.id,
                _who(a.holder),
                _who(a.operator),
                ", ".join(f"{r.code or r.id} {r.name}" for r in a.resources),
                f"{clock.rfc3339(a.not_before)[:10]} – {clock.rfc3339(a.not_after)[:10]}",
                _yuan(a.fee_cap_fen),
                ", ".join(f"{k} {v}%" for k, v in sorted(a.revenue_share.items())),
                ", ".join(a.product_kinds),
                "; ".join(a.security_obligations) or "—",
                a.status,
            ]
            for a in d.authorisations
        ],
    )
    products = _table(
        [
            "Product",
            "Merchant",
            "Resource",
            "Delivery",
            "Public interest",
            "Status",
            "Offer prices",
            "Contracts",
            "Contract prices",
            "Charged (closed periods)",
            "Vouchers",
            "Refunds",
            "Exchanges",
            "Rows",
        ],
        [
            [
                f"{p.name} ({p.id})",
                _who(p.merchant),
                f"{p.resource.code or p.resource.id} {p.resource.name}",
                ", ".join(p.delivery_modes),
                "yes (公益, free)" if p.public_interest else "no",
                p.status,
                ", ".join(_yuan(x) for x in p.offer_prices_fen),
                p.fees.contracts,
                _yuan(p.fees.contract_fees_fen),
                _yuan(p.fees.charged_fen),
                _yuan(p.fees.voucher_fen),
                _yuan(p.fees.refunded_fen),
                p.fees.exchanges,
                p.fees.rows_delivered,
            ]
            for p in d.products
        ],
    )
    t = d.totals
    cover = d.settlement
    closed = ", ".join(cover.closed_periods) or "none"
    state = (
        "complete: December is closed"
        if cover.complete
        else f"not complete until {d.year}-12 is closed (due by {cover.publish_by})"
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>数据授权运营年度公开 {d.year} — disclosure {d.year}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #999;padding:.3em .6em;text-align:left;vertical-align:top}}</style>
</head><body>
<h1>数据授权运营年度公开 · Yearly disclosure {d.year}</h1>
<p>Published by {html.escape(d.publisher)} at {clock.rfc3339(d.generated_at)}.
Period {clock.rfc3339(d.period["from"])} to {clock.rfc3339(d.period["until"])} (UTC).
The same data as JSON: <a href="/disclosure/{d.year}">/disclosure/{d.year}</a>.</p>
<h2>Totals</h2>
<p>{t["authorisations"]} authorisations, {t["products"]} products, {t["contracts"]} contracts
finalised (contract prices {_yuan(t["contract_fees_fen"])}), fees charged
{_yuan(t["charged_fen"])} (vouchers {_yuan(t["voucher_fen"])}, refunds
{_yuan(t["refunded_fen"])}, net {_yuan(t["net_fen"])}), {t["exchanges"]} exchanges,
{t["rows_delivered"]} rows delivered.</p>
<p>Fees charged are the settlement's: the invoices and credit notes of the closed periods of
{d.year} ({html.escape(closed)}); the report is {html.escape(state)}.</p>
<h2>授权运营协议 · Authorisations</h2>
{authorisations}
<h2>数据产品与实际收费 · Products and actual fees</h2>
{products}
</body></html>
"""
