"""Product routes: publishing by merchants, look-up, and the listed catalogue."""

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import problem_responses
from gateway.participants.models import Participant
from gateway.products import service
from gateway.products.models import Product, ProductCreate, ProductRead

router = APIRouter(tags=["products"])


@router.post(
    "/products",
    status_code=201,
    response_model=ProductRead,
    responses=problem_responses(401, 403, 404, 422),
)
def publish_product(
    body: ProductCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProductRead:
    """Publish a product from an authorised resource, with its offers (merchants, operators)."""
    service.require_merchant(me.roles)
    product, offers, entry = service.publish(session, gateway.signer, body=body, merchant_id=me.id)
    return service.to_read(product, offers, entry)


@router.get(
    "/products/{product_id}", response_model=ProductRead, responses=problem_responses(401, 404)
)
def get_product(
    product_id: str,
    _: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ProductRead:
    """Return a product with its offers."""
    product = service.get(session, product_id)
    return service.to_read(product, service.offers_of(session, product.id))


@router.get("/catalogue", response_model=list[ProductRead], responses=problem_responses(401, 422))
def catalogue(
    _: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    offset: int = Query(0, ge=0, le=2**31),
    limit: int = Query(50, ge=1, le=200),
) -> list[ProductRead]:
    """Return listed products with their offers, oldest first."""
    products = session.execute(
        select(Product)
        .where(Product.status == "listed")
        .order_by(Product.created_at, Product.id)
        .offset(offset)
        .limit(limit)
    ).scalars()
    return [service.to_read(p, service.offers_of(session, p.id)) for p in products]
