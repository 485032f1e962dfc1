"""Product routes: drafting, the listing life cycle, look-up, and the DCAT catalogue."""

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import not_found, problem_responses
from gateway.core.types import MAX_OFFSET, ObjectId
from gateway.participants.models import Participant
from gateway.products import catalogue as cat
from gateway.products import open_data as od
from gateway.products import service
from gateway.products.models import (
    TEXT,
    DeliveryMode,
    Product,
    ProductAction,
    ProductCreate,
    ProductRead,
)
from gateway.products.states import ProductState
from gateway.resources import data as resource_data
from gateway.resources.models import Grade, Level

router = APIRouter(tags=["products"])
Action = Literal["submit", "list", "reject", "suspend", "reinstate", "delist"]


@router.post(
    "/products",
    status_code=201,
    response_model=ProductRead,
    responses=problem_responses(401, 403, 404, 422, 502),
)
def publish_product(
    body: ProductCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProductRead:
    """Draft a product from an authorised resource, with its offers and quality report.

    The product starts as `draft`; the merchant submits it for compliance review and the platform
    admin lists it (`POST /products/{id}/submit`, then `/list`).
    """
    service.require_merchant(me.roles)
    product, offers, entry = service.publish(
        session,
        gateway.signer,
        gateway.policy,
        body=body,
        merchant_id=me.id,
        sample=lambda resource: resource_data.sample_rows(session, gateway, resource),
    )
    return service.to_read(product, offers, entry)


@router.get("/products", response_model=list[ProductRead], responses=problem_responses(401, 422))
def list_products(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    status: ProductState | None = Query(None, description="only products in this state"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=200),
) -> list[ProductRead]:
    """Return a merchant's own products, or every product to the admin and auditors (review queue:
    `?status=review`), oldest first."""
    query = select(Product)
    if not {"admin", "auditor"} & set(me.roles):
        query = query.where(Product.merchant_id == me.id)
    if status is not None:
        query = query.where(Product.status == status.value)
    products = session.execute(
        query.order_by(Product.created_at, Product.id).offset(offset).limit(limit)
    ).scalars()
    return [service.to_read(p, service.offers_of(session, p.id)) for p in products]


@router.post(
    "/products/{product_id}/{action}",
    response_model=ProductRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def product_action(
    product_id: ObjectId,
    action: Action,
    body: ProductAction | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ProductRead:
    """Move a product through its life cycle: `submit` (merchant: draft → review), `list` or
    `reject` (admin: review → listed / draft), `suspend` and `reinstate` (admin: listed ⇄
    suspended), `delist` (merchant or admin: → delisted, final). A move the current state does
    not allow is a 409 naming the current state and the allowed next states."""
    product, entry = service.transition(
        session,
        gateway.signer,
        product_id=product_id,
        action=action,
        actor=me,
        reason=body.reason if body else "",
    )
    return service.to_read(product, service.offers_of(session, product.id), entry)


@router.get(
    "/products/{product_id}", response_model=ProductRead, responses=problem_responses(401, 404)
)
def get_product(
    product_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ProductRead:
    """Return a product with its offers (drafts only to their merchant, admins and auditors)."""
    product = service.get(session, product_id)
    if not service.visible_to(product, me):
        raise not_found("product", product_id)
    return service.to_read(product, service.offers_of(session, product.id))


@router.get(
    "/catalogue",
    response_model=dict[str, Any],
    responses={
        200: {
            "description": "A DCAT 3 dcat:Catalog in JSON-LD",
            "content": {"application/ld+json": {}},
        },
        **problem_responses(401, 403, 422),
    },
)
def catalogue(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
    grade: Grade | None = Query(None, description="GB/T 43697 grade"),
    level: Level | None = Query(None, description="sub-level of grade general"),
    domain: str | None = Query(
        None,
        max_length=100,
        pattern=TEXT,
        description="industry domain; 'finance' also finds 'finance/…'",
    ),
    delivery: DeliveryMode | None = Query(None, description="delivery mode"),
    public_interest: bool | None = Query(None, description="only public-interest (公益) ones"),
    q: str | None = Query(
        None,
        min_length=1,
        max_length=200,
        pattern=TEXT,
        description="text in name or description",
    ),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=200),
) -> JSONResponse:
    """Return the listed products this participant may request, as a DCAT 3 catalogue (JSON-LD):
    newest first, paginated (`total`, `offset`, `limit`, `next`), searchable by grade, level,
    domain, delivery mode and free text."""
    query = cat.Query(
        grade=grade,
        level=level,
        domain=domain,
        delivery=delivery,
        public_interest=public_interest,
        q=q,
        offset=offset,
        limit=limit,
    )
    total, page, offers = cat.search(session, query, me)
    base = gateway.settings.issuer.rstrip("/")
    return JSONResponse(
        cat.to_dcat(base, query, total, page, offers), media_type="application/ld+json"
    )


@router.get(
    "/open-data",
    response_model=dict[str, Any],
    responses={
        200: {
            "description": "A DCAT 3 dcat:Catalog of the open-data products in JSON-LD",
            "content": {"application/ld+json": {}},
        },
        **problem_responses(422),
    },
)
def open_data_catalogue(
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
    q: str | None = Query(
        None,
        min_length=1,
        max_length=200,
        pattern=TEXT,
        description="text in name or description",
    ),
    domain: str | None = Query(
        None,
        max_length=100,
        pattern=TEXT,
        description="industry domain; 'environment' also finds 'environment/…'",
    ),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=200),
) -> JSONResponse:
    """Return the open-data products (listed, every offer open: L1 public data, no personal
    information, as the policy judged it) as a DCAT 3 catalogue (JSON-LD), public (no token):
    newest first, paginated (`total`, `offset`, `limit`, `next`), searchable by free text and
    domain. Each dataset names its fields, its merchant and the open-data endpoint
    `POST /open-data/{product_id}/exchanges`, which any authenticated participant calls without
    a contract."""
    query = od.OpenQuery(q=q, domain=domain, offset=offset, limit=limit)
    total, page, offers, merchants = od.search(session, query)
    base = gateway.settings.issuer.rstrip("/")
    return JSONResponse(
        od.to_dcat(base, query, total, page, offers, merchants), media_type="application/ld+json"
    )


@router.get(
    "/open-data/{product_id}",
    response_model=dict[str, Any],
    responses={
        200: {
            "description": "One open-data product as a DCAT 3 dcat:Dataset in JSON-LD",
            "content": {"application/ld+json": {}},
        },
        **problem_responses(404, 422),
    },
)
def open_data_product(
    product_id: ObjectId,
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> JSONResponse:
    """Return one product of the open-data catalogue, public (no token): exactly the
    `dcat:Dataset` that `GET /open-data` lists for it, nothing more. Any product that catalogue
    does not list (a draft, one in review, suspended or delisted, or one not open) is 404, as an
    unknown id: what is not public data is not told to a visitor, not even that it exists."""
    found = od.one(session, product_id)
    if found is None:
        raise not_found("product", product_id)
    base = gateway.settings.issuer.rstrip("/")
    return JSONResponse(
        {"@context": cat.CONTEXT, **od.dataset(base, *found)}, media_type="application/ld+json"
    )
