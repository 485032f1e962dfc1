"""Authorisations: the holder's grant that lets an operator build products from resources.

An authorisation is `active` until the holder revokes it (`revoked`) or its term passes
(`expired`). Either way its listed products are suspended, each with a `product.suspended`
ledger entry: on revocation in the same transaction; on term end when the gateway next notices,
that is the next use of the authorisation (publishing a product, a contract request on one of
its products, reading it) or a sweep
(`POST /authorisations/sweep`, `dsgw authorisations sweep`), whichever comes first.
"""

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.authorisations.models import (
    Authorisation,
    AuthorisationCreate,
    AuthorisationRead,
    SweepResult,
)
from gateway.core import clock
from gateway.core.clock import as_utc, rfc3339
from gateway.core.db import fetch
from gateway.core.errors import Problem, forbidden, not_found, unprocessable
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.core.states import StateMachine
from gateway.evidence.service import commit, record
from gateway.participants.models import Participant
from gateway.resources.models import Resource
from gateway.resources.service import require_coded
from ledger import Entry, Signer

LIFECYCLE = StateMachine(
    "authorisation",
    {
        "active": {"revoke": "revoked", "expire": "expired"},
        "revoked": {},
        "expired": {},
    },
)


def grant(
    session: Session, signer: Signer, *, body: AuthorisationCreate, holder_id: str
) -> tuple[Authorisation, Entry]:
    """Create an authorisation of the holder's own resources to an operator."""
    operator = session.get(Participant, body.operator_id)
    if operator is None:
        raise not_found("participant", body.operator_id)
    if "operator" not in operator.roles:
        raise unprocessable(f"participant {operator.id} is not an authorised operator")
    for resource_id in body.resource_ids:
        resource = session.get(Resource, resource_id)
        if resource is None:
            raise not_found("resource", resource_id)
        if resource.holder_id != holder_id:
            raise forbidden(f"resource {resource_id} is not held by {holder_id}")
        require_coded(resource)
    now = clock.now()
    if body.not_after <= (body.not_before or now):
        raise unprocessable("not_after must be in the future and after not_before")
    authorisation = Authorisation(
        id=new_id("auz"),
        holder_id=holder_id,
        operator_id=operator.id,
        resource_ids=sorted(set(body.resource_ids)),
        not_before=body.not_before or now,
        not_after=body.not_after,
        fee_cap_fen=body.fee_cap_fen,
        revenue_share=body.revenue_share,
        product_kinds=sorted(set(body.product_kinds)),
        security_obligations=list(body.security_obligations),
        exit_terms=body.exit_terms,
        status="active",
        created_at=now,
    )
    session.add(authorisation)
    session.flush()
    entry = record(
        session,
        signer,
        type="authorisation.granted",
        data={
            "authorisation": authorisation.id,
            "holder": holder_id,
            "operator": operator.id,
            "resources": authorisation.resource_ids,
            "not_before": rfc3339(authorisation.not_before),
            "not_after": rfc3339(authorisation.not_after),
            "fee_cap_fen": authorisation.fee_cap_fen,
            "revenue_share": authorisation.revenue_share,
            "product_kinds": authorisation.product_kinds,
            "security_obligations": authorisation.security_obligations,
            "exit_terms_hash": content_hash(authorisation.exit_terms),
        },
    )
    commit(session)
    return authorisation, entry


def list_for(
    session: Session, *, viewer: Participant, offset: int, limit: int
) -> list[Authorisation]:
    """Return the authorisations `viewer` granted or was granted (every one to the admin and
    auditors), oldest first."""
    query = select(Authorisation).order_by(Authorisation.created_at, Authorisation.id)
    if not {"admin", "auditor"} & set(viewer.roles):
        query = query.where(
            or_(Authorisation.holder_id == viewer.id, Authorisation.operator_id == viewer.id)
        )
    return list(session.execute(query.offset(offset).limit(limit)).scalars())


def get(session: Session, authorisation_id: str, *, for_update: bool = False) -> Authorisation:
    """Return the authorisation (locked for update when asked), else raise 404."""
    return fetch(
        session, Authorisation, authorisation_id, kind="authorisation", for_update=for_update
    )


def _end(
    session: Session,
    signer: Signer,
    authorisation: Authorisation,
    *,
    action: str,
    by: str,
    reason: str,
    at: datetime,
) -> tuple[Entry, list[str]]:
    """End an authorisation and suspend its products, recording both (no commit)."""
    from gateway.products import service as products

    before = authorisation.status
    authorisation.status = LIFECYCLE.advance(authorisation.id, before, action)
    authorisation.ended_at = at
    authorisation.end_reason = reason
    entry = record(
        session,
        signer,
        type=f"authorisation.{authorisation.status}",
        data={
            "authorisation": authorisation.id,
            "holder": authorisation.holder_id,
            "operator": authorisation.operator_id,
            "from": before,
            "to": authorisation.status,
            "by": by,
            "reason": reason,
            "ended_at": rfc3339(at),
        },
    )
    suspended = products.suspend_for_authorisation(
        session,
        signer,
        authorisation_id=authorisation.id,
        reason=f"authorisation {authorisation.id} {authorisation.status}: {reason}",
    )
    return entry, suspended


def revoke(
    session: Session, signer: Signer, *, authorisation_id: str, holder_id: str, reason: str
) -> tuple[Authorisation, Entry, list[str]]:
    """The holder revokes: the authorisation ends and its products are suspended, atomically."""
    authorisation = get(session, authorisation_id, for_update=True)
    if authorisation.holder_id != holder_id:
        raise forbidden(f"only the holder {authorisation.holder_id} revokes {authorisation.id}")
    entry, suspended = _end(
        session,
        signer,
        authorisation,
        action="revoke",
        by=holder_id,
        reason=reason,
        at=clock.now(),
    )
    commit(session)
    return authorisation, entry, suspended


def _term_over(authorisation: Authorisation, now: datetime) -> bool:
    return authorisation.status == "active" and now >= as_utc(authorisation.not_after)


def _expire(session: Session, signer: Signer, authorisation: Authorisation) -> list[str]:
    entry, suspended = _end(
        session,
        signer,
        authorisation,
        action="expire",
        by="gateway",
        reason=f"term ended at {rfc3339(as_utc(authorisation.not_after))}",
        at=as_utc(authorisation.not_after),
    )
    return suspended


def expire_if_over(session: Session, signer: Signer, authorisation: Authorisation) -> bool:
    """End the authorisation (and commit) if its term has passed; return whether it did."""
    if not _term_over(authorisation, clock.now()):
        return False
    locked = get(session, authorisation.id, for_update=True)
    if not _term_over(locked, clock.now()):
        return False
    _expire(session, signer, locked)
    commit(session)
    return True


def sweep(session: Session, signer: Signer) -> SweepResult:
    """End every active authorisation whose term has passed and suspend its products."""
    now = clock.now()
    due = session.execute(
        select(Authorisation)
        .where(Authorisation.status == "active", Authorisation.not_after <= now)
        .order_by(Authorisation.not_after, Authorisation.id)
        .with_for_update()
    ).scalars()
    expired, suspended = [], []
    for authorisation in list(due):
        expired.append(authorisation.id)
        suspended.extend(_expire(session, signer, authorisation))
    commit(session)
    return SweepResult(expired=expired, suspended_products=suspended)


def active_for(
    session: Session,
    *,
    authorisation_id: str,
    operator_id: str,
    resource_id: str,
    at: datetime,
    signer: Signer | None = None,
    delivery_modes: list[str] | None = None,
) -> Authorisation:
    """Return the authorisation if it is active now for this operator and resource, else raise.

    With `signer`, an authorisation found past its term is ended on the spot (and its products
    suspended) before the refusal. With `delivery_modes`, they must be authorised product kinds.
    """
    authorisation = get(session, authorisation_id)
    if signer is not None:
        expire_if_over(session, signer, authorisation)
    resource = session.get(Resource, resource_id)
    if resource is not None and resource_id in authorisation.resource_ids:
        require_coded(resource)
    problems = []
    if authorisation.operator_id != operator_id:
        problems.append(f"it was granted to {authorisation.operator_id}, not {operator_id}")
    if resource_id not in authorisation.resource_ids:
        problems.append(f"it does not cover resource {resource_id}")
    if authorisation.status != "active":
        problems.append(f"it is {authorisation.status}")
    if not as_utc(authorisation.not_before) <= at < as_utc(authorisation.not_after):
        problems.append(
            f"its term is {rfc3339(as_utc(authorisation.not_before))} to "
            f"{rfc3339(as_utc(authorisation.not_after))}"
        )
    outside = sorted(set(delivery_modes or []) - set(authorisation.product_kinds or []))
    if outside:
        problems.append(
            f"it does not cover the product kinds {outside} (authorised: "
            f"{authorisation.product_kinds})"
        )
    if problems:
        raise Problem(
            403,
            "not-authorised",
            "No active authorisation",
            f"authorisation {authorisation_id} does not allow this: " + "; ".join(problems),
        )
    return authorisation


def to_read(authorisation: Authorisation, entry: Entry | None = None) -> AuthorisationRead:
    """Return the API view of an authorisation."""
    return AuthorisationRead(
        id=authorisation.id,
        holder_id=authorisation.holder_id,
        operator_id=authorisation.operator_id,
        resource_ids=authorisation.resource_ids,
        not_before=authorisation.not_before,
        not_after=authorisation.not_after,
        fee_cap_fen=authorisation.fee_cap_fen,
        revenue_share=authorisation.revenue_share,
        product_kinds=authorisation.product_kinds or [],
        security_obligations=authorisation.security_obligations or [],
        exit_terms=authorisation.exit_terms or "",
        status=authorisation.status,
        allowed_actions=LIFECYCLE.actions(authorisation.status),
        ended_at=authorisation.ended_at,
        end_reason=authorisation.end_reason,
        created_at=authorisation.created_at,
        ledger_seq=entry.seq if entry else None,
    )
