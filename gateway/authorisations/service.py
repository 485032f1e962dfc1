"""Authorisations: the holder's grant that lets an operator build products from resources."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.authorisations.models import Authorisation, AuthorisationCreate, AuthorisationRead
from gateway.core import clock
from gateway.core.clock import as_utc, rfc3339
from gateway.core.errors import Problem, forbidden, not_found, unprocessable
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.participants.models import Participant
from gateway.resources.models import Resource
from ledger import Entry, Signer


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
    now = clock.now()
    authorisation = Authorisation(
        id=new_id("auz"),
        holder_id=holder_id,
        operator_id=operator.id,
        resource_ids=sorted(set(body.resource_ids)),
        not_before=body.not_before or now,
        not_after=body.not_after,
        fee_cap_fen=body.fee_cap_fen,
        revenue_share=body.revenue_share,
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
        },
    )
    commit(session)
    return authorisation, entry


def active_for(
    session: Session, *, authorisation_id: str, operator_id: str, resource_id: str, at: datetime
) -> Authorisation:
    """Return the authorisation if it is active now for this operator and resource, else raise."""
    authorisation = session.execute(
        select(Authorisation).where(Authorisation.id == authorisation_id)
    ).scalar_one_or_none()
    if authorisation is None:
        raise not_found("authorisation", authorisation_id)
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
        status=authorisation.status,
        created_at=authorisation.created_at,
        ledger_seq=entry.seq if entry else None,
    )
