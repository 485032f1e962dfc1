"""The public catalogue of open data: listed products whose every offer the policy found open.

Open data (L1 public, no personal information; specs/policy-input.md "Open data") is pulled by
any authenticated participant without a contract at `POST /open-data/{product_id}/exchanges`.
This catalogue lists it for everyone, without a token, as a DCAT 3 `dcat:Catalog` in JSON-LD:
the same `dcat:Dataset`s as `GET /catalogue`, each with its fields (`dsgw:fields`, those the
policy exposes), its merchant (`dsgw:merchant`: id and name) and its open-data endpoint
(`dsgw:openDataEndpoint`).

The database narrows the candidates (listed, graded general L1 — what an open product's derived
grade must be — and the free text); whether each candidate is open is the policy's own verdict
stored with its offers (`service.is_open`), read here, so the page is cut after that test.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.participants.models import Participant
from gateway.products import catalogue, service
from gateway.products.models import Product, ProductOffer
from gateway.products.states import ProductState


@dataclass(frozen=True)
class OpenQuery:
    """A visitor's search of the open-data catalogue."""

    q: str | None = None
    domain: str | None = None
    offset: int = 0
    limit: int = 50

    def params(self, **override: Any) -> dict[str, Any]:
        """Return the query as URL parameters (None left out)."""
        values = {**self.__dict__, **override}
        return {k: v for k, v in values.items() if v is not None}


def _candidates(session: Session, query: OpenQuery) -> list[Product]:
    where = [
        Product.status == ProductState.LISTED.value,
        Product.grade == "general",
        Product.level == "L1",
    ]
    if query.domain:
        where.append(
            (Product.domain == query.domain)
            | Product.domain.startswith(query.domain.rstrip("/") + "/", autoescape=True)
        )
    if query.q:
        where.append(Product.search_text.contains(query.q.strip().lower(), autoescape=True))
    return list(
        session.execute(
            select(Product).where(*where).order_by(Product.created_at.desc(), Product.id.desc())
        ).scalars()
    )


def search(
    session: Session, query: OpenQuery
) -> tuple[int, list[Product], dict[str, list[ProductOffer]], dict[str, str]]:
    """Return (total open products matching, the page, their offers, merchant names by id)."""
    candidates = _candidates(session, query)
    offers: dict[str, list[ProductOffer]] = {p.id: [] for p in candidates}
    if candidates:
        for stored in session.execute(
            select(ProductOffer)
            .where(ProductOffer.product_id.in_(list(offers)))
            .order_by(ProductOffer.product_id, ProductOffer.position)
        ).scalars():
            offers[stored.product_id].append(stored)
    open_products = [p for p in candidates if service.is_open(offers[p.id])]
    page = open_products[query.offset : query.offset + query.limit]
    names: dict[str, str] = {}
    merchants = {p.merchant_id for p in page}
    if merchants:
        names = dict(
            session.execute(
                select(Participant.id, Participant.name).where(Participant.id.in_(merchants))
            ).all()
        )
    return len(open_products), page, {p.id: offers[p.id] for p in page}, names


def one(
    session: Session, product_id: str
) -> tuple[Product, list[ProductOffer], dict[str, str]] | None:
    """Return (the product, its offers, its merchant's name by id) when the open-data catalogue
    lists it (listed, general L1, every offer open: the tests `search` makes), else None: a
    draft, a product in review, suspended or delisted, or one that is not open."""
    product = session.get(Product, product_id)
    if (
        product is None
        or product.status != ProductState.LISTED.value
        or (product.grade, product.level) != ("general", "L1")
    ):
        return None
    offers = service.offers_of(session, product.id)
    if not service.is_open(offers):
        return None
    name = session.execute(
        select(Participant.name).where(Participant.id == product.merchant_id)
    ).scalar_one_or_none()
    return product, offers, {product.merchant_id: name or product.merchant_id}


def fields_of(offers: list[ProductOffer]) -> list[str]:
    """Return the fields the policy exposes through the product's offers (sorted)."""
    return sorted(
        {f for o in offers for e in (o.exposure or {}).values() for f in e.get("fields", [])}
    )


def dataset(
    base: str, product: Product, offers: list[ProductOffer], merchants: dict[str, str]
) -> dict[str, Any]:
    """Return an open product as the open-data catalogue shows it: the catalogue's
    `dcat:Dataset` with its fields, its merchant and its open-data endpoint."""
    out = catalogue._dataset(base, product, offers)
    out["dsgw:fields"] = fields_of(offers)
    out["dsgw:merchant"] = {
        "@id": f"{base}/participants/{product.merchant_id}",
        "dct:identifier": product.merchant_id,
        "foaf:name": merchants.get(product.merchant_id, product.merchant_id),
    }
    out["dsgw:openDataEndpoint"] = {"@id": f"{base}/open-data/{product.id}/exchanges"}
    return out


def to_dcat(
    base: str,
    query: OpenQuery,
    total: int,
    page: list[Product],
    offers: dict[str, list[ProductOffer]],
    merchants: dict[str, str],
) -> dict[str, Any]:
    """Return the page as a DCAT 3 `dcat:Catalog` in JSON-LD, with paging links."""
    following = query.offset + len(page)
    datasets = [dataset(base, product, offers[product.id], merchants) for product in page]
    return {
        "@context": catalogue.CONTEXT,
        "@id": f"{base}/open-data",
        "@type": "dcat:Catalog",
        "dct:title": "dsgw open data (L1 public data, no contract)",
        "dcat:service": [
            {
                "@id": f"{base}/open-data",
                "@type": "dcat:DataService",
                "dct:title": "dsgw open data: POST /open-data/{product_id}/exchanges with any "
                "participant's token, no contract",
                "dcat:endpointURL": {"@id": base},
                "dcat:endpointDescription": {"@id": f"{base}/openapi.json"},
            }
        ],
        "dcat:dataset": datasets,
        "total": total,
        "offset": query.offset,
        "limit": query.limit,
        "next": (
            f"{base}/open-data?{urlencode(query.params(offset=following))}"
            if following < total
            else None
        ),
    }
