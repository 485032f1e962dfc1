"""The catalogue: listed products as a DCAT 3 catalogue in JSON-LD, filtered per consumer.

A consumer sees only what it may request: listed products, and — when it is outside the country
(region `cross_border`) — no product graded `important` or `core`, and only offers whose data may
be used anywhere (`region: any`; a product without one is not shown). Each product is a
`dcat:Dataset` with one `dcat:Distribution` per delivery mode (served by the gateway's
`dcat:DataService`), its offers as ODRL policies (`odrl:hasPolicy`), its lineage
(`prov:wasDerivedFrom`) and its GB/T 36344 quality report (`dqv:hasQualityMeasurement`).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

from contracts.offer import DSGW_NS
from gateway.participants.models import Participant
from gateway.products import service
from gateway.products.models import Product, ProductOffer
from gateway.products.states import ProductState

# What a consumer outside the country never sees (nor may request): GB/T 43697 important and core.
NOT_ACROSS_BORDER = ("important", "core")

CONTEXT: dict[str, Any] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "prov": "http://www.w3.org/ns/prov#",
    "dqv": "http://www.w3.org/ns/dqv#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dsgw": DSGW_NS,
    "total": {"@id": "dsgw:total", "@type": "xsd:integer"},
    "offset": {"@id": "dsgw:offset", "@type": "xsd:integer"},
    "limit": {"@id": "dsgw:limit", "@type": "xsd:integer"},
    "next": {"@id": "dsgw:next", "@type": "@id"},
}
# Delivery modes open data is pulled through without a contract (compute needs a contract's terms).
OPEN_MODES = ("api", "file")
MEDIA_TYPES = {"api": "application/json", "file": "text/csv", "compute": "application/json"}


@dataclass(frozen=True)
class Query:
    """A consumer's catalogue search."""

    grade: str | None = None
    level: str | None = None
    domain: str | None = None
    delivery: str | None = None
    public_interest: bool | None = None
    q: str | None = None
    offset: int = 0
    limit: int = 50

    def params(self, **override: Any) -> dict[str, Any]:
        """Return the query as URL parameters (None left out)."""
        values = {**self.__dict__, **override}
        return {
            k: (str(v).lower() if isinstance(v, bool) else v)
            for k, v in values.items()
            if v is not None
        }


def _abroad(consumer: Participant) -> bool:
    return consumer.region == "cross_border"


def may_see(product: Product, consumer: Participant) -> bool:
    """Return whether the catalogue shows this product to `consumer` (and it may request it)."""
    if product.status != ProductState.LISTED:
        return False
    return not (_abroad(consumer) and product.grade in NOT_ACROSS_BORDER)


def may_request(offer_region: str, consumer: Participant) -> bool:
    """Return whether `consumer` may take an offer with this region term: a consumer outside
    the country only offers whose data may be used anywhere (`region: any`)."""
    return not (_abroad(consumer) and offer_region != "any")


def _conditions(query: Query, consumer: Participant) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Product.status == ProductState.LISTED.value]
    if _abroad(consumer):
        where.append(Product.grade.not_in(NOT_ACROSS_BORDER))
        where.append(
            exists().where(ProductOffer.product_id == Product.id, ProductOffer.region == "any")
        )
    if query.grade:
        where.append(Product.grade == query.grade)
    if query.level:
        where.append(Product.level == query.level)
    if query.domain:
        # "finance" finds "finance" and its sub-domains "finance/credit", …
        where.append(
            or_(
                Product.domain == query.domain,
                Product.domain.startswith(query.domain.rstrip("/") + "/", autoescape=True),
            )
        )
    if query.delivery:
        where.append(Product.modes.contains(f",{query.delivery},", autoescape=True))
    if query.public_interest is not None:
        where.append(Product.public_interest.is_(query.public_interest))
    if query.q:
        where.append(Product.search_text.contains(query.q.strip().lower(), autoescape=True))
    return where


def search(
    session: Session, query: Query, consumer: Participant
) -> tuple[int, list[Product], dict[str, list[ProductOffer]]]:
    """Return (total matching, the page of products, their offers by product)."""
    where = _conditions(query, consumer)
    total = session.execute(select(func.count()).select_from(Product).where(*where)).scalar_one()
    page = list(
        session.execute(
            select(Product)
            .where(*where)
            .order_by(Product.created_at.desc(), Product.id.desc())
            .offset(query.offset)
            .limit(query.limit)
        ).scalars()
    )
    offers: dict[str, list[ProductOffer]] = {p.id: [] for p in page}
    if page:
        wanted = select(ProductOffer).where(ProductOffer.product_id.in_(list(offers)))
        if _abroad(consumer):
            wanted = wanted.where(ProductOffer.region == "any")
        for stored in session.execute(
            wanted.order_by(ProductOffer.product_id, ProductOffer.position)
        ).scalars():
            offers[stored.product_id].append(stored)
    return total, page, offers


def _dataset(base: str, product: Product, offers: list[ProductOffer]) -> dict[str, Any]:
    service_id = f"{base}/exchanges"
    open_data = service.is_open(offers)
    return {
        "@id": f"{base}/products/{product.id}",
        "@type": "dcat:Dataset",
        "dct:identifier": product.id,
        "dct:title": product.name,
        "dct:description": product.description,
        "dct:publisher": {"@id": f"{base}/participants/{product.merchant_id}"},
        "dct:created": {"@value": product.created_at.isoformat(), "@type": "xsd:dateTime"},
        "dcat:theme": product.domain,
        "dsgw:grade": product.grade,
        "dsgw:level": product.level,
        "dsgw:publicInterest": product.public_interest,
        "dsgw:openData": open_data,
        "prov:wasDerivedFrom": [{"@id": f"{base}/resources/{product.resource_id}"}],
        "dqv:hasQualityMeasurement": [
            {
                "@type": "dqv:QualityMeasurement",
                "dqv:isMeasurementOf": {"@id": f"dsgw:quality/{d['dimension']}"},
                "dct:title": d["name"],
                "dqv:value": d["score"],
                "dsgw:method": d["method"],
            }
            for d in (product.quality or {}).get("dimensions", [])
        ],
        "dcat:distribution": [
            {
                "@type": "dcat:Distribution",
                "dct:title": f"{product.name} ({mode})",
                "dsgw:deliveryMode": mode,
                "dcat:mediaType": MEDIA_TYPES.get(mode, "application/json"),
                "dcat:accessService": {
                    "@id": f"{base}/open-data" if open_data and mode in OPEN_MODES else service_id
                },
                **(
                    {"dcat:accessURL": {"@id": f"{base}/open-data/{product.id}/exchanges"}}
                    if open_data and mode in OPEN_MODES
                    else {}
                ),
            }
            for mode in product.delivery_modes
        ],
        "odrl:hasPolicy": [service.offer_read(product, o).odrl for o in offers],
    }


def to_dcat(
    base: str, query: Query, total: int, page: list[Product], offers: dict[str, list]
) -> dict[str, Any]:
    """Return the page as a DCAT 3 `dcat:Catalog` in JSON-LD, with paging links."""
    following = query.offset + len(page)
    return {
        "@context": CONTEXT,
        "@id": f"{base}/catalogue",
        "@type": "dcat:Catalog",
        "dct:title": "dsgw data products",
        "dcat:service": [
            {
                "@id": f"{base}/exchanges",
                "@type": "dcat:DataService",
                "dct:title": "dsgw exchange (rows under a usage contract)",
                "dcat:endpointURL": {"@id": base},
                "dcat:endpointDescription": {"@id": f"{base}/openapi.json"},
            },
            {
                "@id": f"{base}/open-data",
                "@type": "dcat:DataService",
                "dct:title": "dsgw open data (L1 public data, no contract: POST "
                "/open-data/{product_id}/exchanges)",
                "dcat:endpointURL": {"@id": base},
                "dcat:endpointDescription": {"@id": f"{base}/openapi.json"},
            },
        ],
        "dcat:dataset": [_dataset(base, p, offers[p.id]) for p in page],
        "total": total,
        "offset": query.offset,
        "limit": query.limit,
        "next": (
            f"{base}/catalogue?{urlencode(query.params(offset=following))}"
            if following < total
            else None
        ),
    }
