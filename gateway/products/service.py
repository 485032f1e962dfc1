"""Publishing data products and their offers, within an active authorisation and its fee cap."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import Offer, to_odrl
from gateway.authorisations import service as authorisations
from gateway.core import clock
from gateway.core.errors import forbidden, not_found, unprocessable
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.products.models import OfferRead, Product, ProductCreate, ProductOffer, ProductRead
from gateway.resources import service as resources
from ledger import Entry, Signer


def _check_offer(index: int, offer: Offer, *, fields: dict, fee_cap: int, public: bool) -> None:
    """Raise 422 naming the offer when its terms do not fit the resource or the authorisation."""
    where = f"offers[{index}]"
    if offer.fields is not None:
        unknown = sorted(set(offer.fields) - set(fields))
        if unknown:
            raise unprocessable(f"{where}.fields: the resource has no fields {unknown}")
    not_personal = sorted(
        name
        for name in offer.lawful_basis_fields
        if not (fields.get(name, {}).get("personal") or fields.get(name, {}).get("sensitive"))
    )
    if not_personal:
        raise unprocessable(
            f"{where}.lawful_basis_fields: {not_personal} are not personal fields of the resource"
        )
    if public and offer.price_fen != 0:
        raise unprocessable(f"{where}.price_fen: a public-interest product is free (公益): use 0")
    if offer.price_fen > fee_cap:
        raise unprocessable(
            f"{where}.price_fen: {offer.price_fen} fen exceeds the authorisation's fee cap of "
            f"{fee_cap} fen"
        )


def publish(
    session: Session, signer: Signer, *, body: ProductCreate, merchant_id: str
) -> tuple[Product, list[ProductOffer], Entry]:
    """List a product from an authorised resource, with its offers, and record it."""
    resource = resources.get(session, body.resource_id)
    now = clock.now()
    authorisation = authorisations.active_for(
        session,
        authorisation_id=body.authorisation_id,
        operator_id=merchant_id,
        resource_id=resource.id,
        at=now,
        signer=signer,
        delivery_modes=body.delivery_modes,
    )
    fields = {f["name"]: f for f in resource.fields}
    for index, offer in enumerate(body.offers):
        _check_offer(
            index,
            offer,
            fields=fields,
            fee_cap=authorisation.fee_cap_fen,
            public=body.public_interest,
        )
    product = Product(
        id=new_id("prd"),
        merchant_id=merchant_id,
        authorisation_id=authorisation.id,
        resource_id=resource.id,
        name=body.name,
        description=body.description,
        delivery_modes=sorted(set(body.delivery_modes)),
        public_interest=body.public_interest,
        status="listed",
        created_at=now,
    )
    session.add(product)
    offers = [
        ProductOffer(
            id=new_id("off"),
            product_id=product.id,
            terms=offer.model_dump(mode="json"),
            created_at=now,
        )
        for offer in body.offers
    ]
    session.add_all(offers)
    session.flush()
    entry = record(
        session,
        signer,
        type="product.published",
        data={
            "product": product.id,
            "merchant": merchant_id,
            "authorisation": authorisation.id,
            "lineage": [resource.id],
            "grade": resource.grade,
            "level": resource.level,
            "delivery_modes": product.delivery_modes,
            "public_interest": product.public_interest,
            "offers": [{"offer": o.id, "terms_hash": content_hash(o.terms)} for o in offers],
        },
    )
    commit(session)
    return product, offers, entry


def get(session: Session, product_id: str) -> Product:
    """Return the product, else raise 404."""
    product = session.get(Product, product_id)
    if product is None:
        raise not_found("product", product_id)
    return product


def get_offer(session: Session, offer_id: str) -> tuple[ProductOffer, Offer]:
    """Return the stored offer and its parsed terms, else raise 404."""
    stored = session.get(ProductOffer, offer_id)
    if stored is None:
        raise not_found("offer", offer_id)
    return stored, Offer.model_validate(stored.terms)


def offers_of(session: Session, product_id: str) -> list[ProductOffer]:
    """Return a product's offers in creation order."""
    return list(
        session.execute(
            select(ProductOffer)
            .where(ProductOffer.product_id == product_id)
            .order_by(ProductOffer.created_at, ProductOffer.id)
        ).scalars()
    )


def to_read(
    product: Product, offers: list[ProductOffer], entry: Entry | None = None
) -> ProductRead:
    """Return the API view of a product with its offers (terms and ODRL form)."""
    return ProductRead(
        id=product.id,
        merchant_id=product.merchant_id,
        authorisation_id=product.authorisation_id,
        resource_id=product.resource_id,
        name=product.name,
        description=product.description,
        delivery_modes=product.delivery_modes,
        public_interest=product.public_interest,
        status=product.status,
        offers=[
            OfferRead(
                id=o.id,
                product_id=o.product_id,
                terms=o.terms,
                odrl=to_odrl(
                    Offer.model_validate(o.terms),
                    offer_id=o.id,
                    target=product.id,
                    assigner=product.merchant_id,
                ),
            )
            for o in offers
        ],
        created_at=product.created_at,
        ledger_seq=entry.seq if entry else None,
    )


def require_merchant(roles: list[str]) -> None:
    """Raise 403 unless the roles allow publishing products."""
    if not {"merchant", "operator"} & set(roles):
        raise forbidden("publishing products needs the role merchant or operator")


def suspend_for_authorisation(
    session: Session, signer: Signer, *, authorisation_id: str, reason: str
) -> list[str]:
    """Suspend the listed products built under an authorisation that ended; return their ids.

    Each suspension gets its `product.suspended` entry in the caller's transaction (no commit).
    """
    return _suspend_where(
        session,
        signer,
        Product.authorisation_id == authorisation_id,
        reason=reason,
        cause={"authorisation": authorisation_id},
    )


def suspend_for_resource(
    session: Session, signer: Signer, *, resource_id: str, reason: str
) -> list[str]:
    """Suspend the listed products built from a resource whose registration was cancelled."""
    return _suspend_where(
        session,
        signer,
        Product.resource_id == resource_id,
        reason=reason,
        cause={"resource": resource_id},
    )


def _suspend_where(session: Session, signer: Signer, condition, *, reason: str, cause: dict):
    found = session.execute(
        select(Product)
        .where(condition, Product.status == "listed")
        .order_by(Product.id)
        .with_for_update()
    ).scalars()
    suspended = []
    for product in found:
        product.status = "suspended"
        record(
            session,
            signer,
            type="product.suspended",
            data={
                "product": product.id,
                "from": "listed",
                "to": "suspended",
                "by": "gateway",
                "reason": reason,
                **cause,
            },
        )
        suspended.append(product.id)
    return suspended
