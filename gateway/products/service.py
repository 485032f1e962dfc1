"""Data products: drafted within an authorisation and its fee cap, reviewed, listed, suspended,
delisted — every move on the ledger (specs/lifecycles-products.md)."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import Offer, to_odrl
from gateway.authorisations import service as authorisations
from gateway.compute import rules as compute_rules
from gateway.core import clock
from gateway.core.db import fetch
from gateway.core.errors import Problem, forbidden, not_found, unprocessable
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.participants.models import Participant
from gateway.policy import grading
from gateway.policy import versions as policy_versions
from gateway.policy.client import PolicyClient, PolicyError
from gateway.products import quality, states
from gateway.products.models import OfferRead, Product, ProductCreate, ProductOffer, ProductRead
from gateway.products.states import ProductState
from gateway.resources import service as resources
from gateway.resources.models import protected_fields
from ledger import Entry, Signer


def _check_offer(
    index: int, offer: Offer, *, fields: dict, protected: set[str], fee_cap: int, public: bool
) -> None:
    """Raise 422 naming the offer when its terms do not fit the resource or the authorisation."""
    where = f"offers[{index}]"
    if offer.fields is not None:
        unknown = sorted(set(offer.fields) - set(fields))
        if unknown:
            raise unprocessable(f"{where}.fields: the resource has no fields {unknown}")
    not_personal = sorted(name for name in offer.lawful_basis_fields if name not in protected)
    if not_personal:
        raise unprocessable(
            f"{where}.lawful_basis_fields: {not_personal} are not personal fields of the resource"
        )
    if offer.compute is not None:
        named = set(offer.compute.columns) | {offer.compute.subject} - {None}
        undeclared = sorted(named - set(fields))
        if undeclared:
            raise unprocessable(f"{where}.compute: the resource has no fields {undeclared}")
    if public and offer.price_fen != 0:
        raise unprocessable(f"{where}.price_fen: a public-interest product is free (公益): use 0")
    if public and any(offer.price.rates() if offer.price is not None else []):
        raise unprocessable(
            f"{where}.price: a public-interest product is free (公益): every rate must be 0"
        )
    if offer.price_fen > fee_cap:
        raise unprocessable(
            f"{where}.price_fen: {offer.price_fen} fen exceeds the authorisation's fee cap of "
            f"{fee_cap} fen"
        )
    over = [rate for rate in (offer.price.rates() if offer.price else []) if rate > fee_cap]
    if over:
        raise unprocessable(
            f"{where}.price: rate(s) {over} fen exceed the authorisation's fee cap of {fee_cap} fen"
        )


def modes_key(modes: list[str]) -> str:
    """Return the delivery modes as the searchable ',api,file,' string."""
    return "," + ",".join(sorted(set(modes))) + ","


def search_text(name: str, description: str) -> str:
    """Return what free-text search matches: name and description, lower case."""
    return f"{name}\n{description}".lower()


def _exposures(
    policy: PolicyClient, *, resource, product: Product, offers: list[Offer]
) -> list[dict[str, dict]]:
    """Return each offer's exposure per delivery mode, from the policy; fail closed (503)."""
    try:
        return [
            grading.offer_exposure(policy, resource=resource, product=product, offer=offer)
            for offer in offers
        ]
    except (PolicyError, ValueError) as exc:
        raise Problem(
            503,
            "policy-unavailable",
            "Policy engine unavailable",
            f"the product's exposed grade comes from the policy, which gave none ({exc}); "
            "nothing was drafted; retry later",
        ) from None


def publish(
    session: Session,
    signer: Signer,
    policy: PolicyClient,
    *,
    body: ProductCreate,
    merchant_id: str,
    sample: Callable[[Any], list[dict]],
) -> tuple[Product, list[ProductOffer], Entry]:
    """Create a draft product from an authorised resource, with its offers and quality report.

    `sample(resource)` returns the rows the quality report and default compute terms are
    computed on: all of an embedded dataset, the first 20,000 rows of an external source
    (gateway/resources/data.py, SAMPLE_ROWS); read once, after the authorisation is checked.

    Its grade is the one the policy derives from what its offers expose (就高从严), never the
    resource's typed by hand: masking or aggregating a field can lower it, and the ledger entry
    says so beside the resource's own grade.
    """
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
    rows = sample(resource)
    fields = {f["name"]: f for f in resource.fields}
    protected = protected_fields(
        resource.fields,
        personal_information=resource.personal_information,
        sensitive_personal_information=resource.sensitive_personal_information,
    )
    if "compute" in body.delivery_modes:
        # Compute answers only declared questions: an offer without terms gets the defaults
        # derived from the resource (specs/compute.md), stored and shown with the offer.
        defaults = None
        offers = []
        for offer in body.offers:
            if offer.compute is None:
                defaults = defaults or compute_rules.default_terms(
                    resource.fields,
                    rows,
                    personal_information=resource.personal_information,
                    sensitive_personal_information=resource.sensitive_personal_information,
                )
                offer = offer.model_copy(update={"compute": defaults})
            offers.append(offer)
        body = body.model_copy(update={"offers": offers})
    for index, offer in enumerate(body.offers):
        _check_offer(
            index,
            offer,
            fields=fields,
            protected=protected,
            fee_cap=authorisation.fee_cap_fen,
            public=body.public_interest,
        )
    modes = sorted(set(body.delivery_modes))
    product = Product(
        id=new_id("prd"),
        merchant_id=merchant_id,
        authorisation_id=authorisation.id,
        resource_id=resource.id,
        name=body.name,
        description=body.description,
        delivery_modes=modes,
        modes=modes_key(modes),
        public_interest=body.public_interest,
        search_text=search_text(body.name, body.description),
        grade=resource.grade,
        level=resource.level,
        domain=resource.domain,
        holder_id=resource.holder_id,
        quality=quality.report(resource.fields, rows, body.quality),
        status=ProductState.DRAFT.value,
        created_at=now,
        updated_at=now,
    )
    exposures = _exposures(policy, resource=resource, product=product, offers=body.offers)
    policy_version = policy_versions.current(session, signer, policy)
    product.grade, product.level = grading.highest(
        [exposure for modes in exposures for exposure in modes.values()]
    )
    session.add(product)
    offers = [
        ProductOffer(
            id=new_id("off"),
            product_id=product.id,
            position=position,
            region=offer.region,
            terms=offer.model_dump(mode="json"),
            exposure=exposure,
            created_at=now,
        )
        for position, (offer, exposure) in enumerate(zip(body.offers, exposures, strict=True))
    ]
    session.add_all(offers)
    session.flush()
    entry = record(
        session,
        signer,
        type="product.drafted",
        data={
            "product": product.id,
            "state": product.status,
            "merchant": merchant_id,
            "authorisation": authorisation.id,
            "lineage": [resource.id],
            "grade": product.grade,
            "level": product.level,
            "resource_grade": resource.grade,
            "resource_level": resource.level,
            "policy_version": policy_version,
            "delivery_modes": product.delivery_modes,
            "public_interest": product.public_interest,
            "domain": product.domain,  # what a data voucher's eligible domains are matched on
            "quality_hash": content_hash(product.quality),
            "offers": [{"offer": o.id, "terms_hash": content_hash(o.terms)} for o in offers],
        },
    )
    commit(session)
    return product, offers, entry


def _is_admin(participant: Participant) -> bool:
    return "admin" in participant.roles


def _may(product: Product, actor: Participant, action: str) -> None:
    """Raise 403 unless `actor` may take `action` on the product."""
    owner = actor.id == product.merchant_id
    if action == "submit" and not owner:
        raise forbidden(f"only the merchant {product.merchant_id} submits product {product.id}")
    if action in ("list", "reject", "suspend", "reinstate") and not _is_admin(actor):
        raise forbidden(f"only the platform admin may {action} a product (compliance review)")
    if action == "delist" and not (owner or _is_admin(actor)):
        raise forbidden(
            f"only the merchant {product.merchant_id} or the platform admin delists "
            f"product {product.id}"
        )


def _move(
    session: Session, signer: Signer, product: Product, action: str, *, by: str, reason: str
) -> Entry:
    """Apply `action` (checked) and record it, inside the caller's transaction."""
    previous = product.status
    target, entry_type = states.check(product.id, product.status, action)
    product.status = target.value
    product.status_reason = reason or None
    product.updated_at = clock.now()
    return record(
        session,
        signer,
        type=entry_type,
        data={
            "product": product.id,
            "from": previous,
            "state": product.status,
            "merchant": product.merchant_id,
            "authorisation": product.authorisation_id,
            "by": by,
            "reason": reason,
        },
    )


def transition(
    session: Session,
    signer: Signer,
    *,
    product_id: str,
    action: str,
    actor: Participant,
    reason: str = "",
) -> tuple[Product, Entry]:
    """Take a life-cycle action (submit, list, reject, suspend, reinstate, delist) and record it."""
    product = get(session, product_id, for_update=True)
    if not visible_to(product, actor):  # a draft or one in review: unknown to anyone else
        raise not_found("product", product_id)
    _may(product, actor, action)
    states.check(product.id, product.status, action)
    if action in ("list", "reinstate"):
        # A product goes (back) on the market only under an authorisation still in force.
        authorisations.active_for(
            session,
            authorisation_id=product.authorisation_id,
            operator_id=product.merchant_id,
            resource_id=product.resource_id,
            at=clock.now(),
        )
    if action == "reject" and not reason.strip():
        raise unprocessable("reason: a rejection says why, so that the merchant can fix it")
    entry = _move(session, signer, product, action, by=actor.id, reason=reason)
    commit(session)
    return product, entry


def authorisation_in_force(session: Session, product: Product) -> bool:
    """Return whether the product's authorisation still lets its merchant offer it now."""
    try:
        authorisations.active_for(
            session,
            authorisation_id=product.authorisation_id,
            operator_id=product.merchant_id,
            resource_id=product.resource_id,
            at=clock.now(),
        )
    except Problem as exc:
        if exc.status == 403:
            return False
        raise
    return True


def get(session: Session, product_id: str, *, for_update: bool = False) -> Product:
    """Return the product (locked for update when asked), else raise 404."""
    return fetch(session, Product, product_id, kind="product", for_update=for_update)


def visible_to(product: Product, participant: Participant) -> bool:
    """Return whether the participant may see the product outside the catalogue."""
    return (
        product.status in (ProductState.LISTED, ProductState.SUSPENDED, ProductState.DELISTED)
        or participant.id == product.merchant_id
        or bool({"admin", "auditor"} & set(participant.roles))
    )


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
            .order_by(ProductOffer.position)
        ).scalars()
    )


def offer_read(product: Product, stored: ProductOffer) -> OfferRead:
    """Return the API view of one offer: its terms and its ODRL form."""
    return OfferRead(
        id=stored.id,
        product_id=stored.product_id,
        terms=stored.terms,
        exposure=stored.exposure,
        odrl=to_odrl(
            Offer.model_validate(stored.terms),
            offer_id=stored.id,
            target=product.id,
            assigner=product.merchant_id,
        ),
    )


def is_open(offers: list[ProductOffer]) -> bool:
    """Return whether the policy found the product's data open (L1 public, no personal
    information): pulled by any authenticated participant without a contract."""
    exposures = [e for o in offers for e in (o.exposure or {}).values()]
    return bool(exposures) and all(e.get("open") is True for e in exposures)


def to_read(
    product: Product, offers: list[ProductOffer], entry: Entry | None = None
) -> ProductRead:
    """Return the API view of a product with its offers (terms and ODRL form)."""
    return ProductRead(
        id=product.id,
        merchant_id=product.merchant_id,
        authorisation_id=product.authorisation_id,
        resource_id=product.resource_id,
        lineage=[
            {
                "resource": product.resource_id,
                "holder": product.holder_id,
                "authorisation": product.authorisation_id,
                "grade": product.grade,
                "level": product.level,
            }
        ],
        name=product.name,
        description=product.description,
        delivery_modes=product.delivery_modes,
        public_interest=product.public_interest,
        open_data=is_open(offers),
        grade=product.grade,
        level=product.level,
        domain=product.domain,
        quality=product.quality,
        status=product.status,
        status_reason=product.status_reason,
        allowed_next_states=states.allowed_next(product.status),
        offers=[offer_read(product, o) for o in offers],
        created_at=product.created_at,
        updated_at=product.updated_at,
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
    )


def _suspend_where(session: Session, signer: Signer, condition, *, reason: str) -> list[str]:
    """Suspend the listed products matching `condition` through the state machine, each with
    its `product.suspended` entry, in the caller's transaction (no commit); return their ids."""
    found = session.execute(
        select(Product)
        .where(condition, Product.status == ProductState.LISTED.value)
        .order_by(Product.created_at, Product.id)
        .with_for_update()
    ).scalars()
    suspended = []
    for product in list(found):
        _move(session, signer, product, "suspend", by="gateway", reason=reason)
        suspended.append(product.id)
    session.flush()
    return suspended
