"""Registering data resources (数据资源登记) with their grade and dataset."""

from sqlalchemy.orm import Session

from gateway.core import clock
from gateway.core.errors import not_found
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.evidence.service import commit, record
from gateway.resources.models import Resource, ResourceCreate, ResourceRead
from ledger import Entry, Signer


def register(
    session: Session, signer: Signer, *, body: ResourceCreate, holder_id: str
) -> tuple[Resource, Entry]:
    """Create a resource held by `holder_id` and its ledger entry."""
    resource = Resource(
        id=new_id("res"),
        holder_id=holder_id,
        name=body.name,
        domain=body.domain,
        grade=body.grade,
        level=body.level,
        personal_information=body.personal_information,
        sensitive_personal_information=body.sensitive_personal_information,
        fields=[f.model_dump() for f in body.fields],
        update_cycle=body.update_cycle,
        rows=body.rows,
        created_at=clock.now(),
    )
    session.add(resource)
    session.flush()
    entry = record(
        session,
        signer,
        type="resource.registered",
        data={
            "resource": resource.id,
            "holder": holder_id,
            "name": resource.name,
            "domain": resource.domain,
            "grade": resource.grade,
            "level": resource.level,
            "personal_information": resource.personal_information,
            "sensitive_personal_information": resource.sensitive_personal_information,
            "fields": resource.fields,
            "rows": len(resource.rows),
            "dataset_hash": content_hash(resource.rows),
        },
    )
    commit(session)
    return resource, entry


def get(session: Session, resource_id: str) -> Resource:
    """Return the resource, else raise 404."""
    resource = session.get(Resource, resource_id)
    if resource is None:
        raise not_found("resource", resource_id)
    return resource


def to_read(resource: Resource, entry: Entry | None = None) -> ResourceRead:
    """Return the API view of a resource (its rows are never shown here)."""
    return ResourceRead(
        id=resource.id,
        holder_id=resource.holder_id,
        name=resource.name,
        domain=resource.domain,
        grade=resource.grade,
        level=resource.level,
        personal_information=resource.personal_information,
        sensitive_personal_information=resource.sensitive_personal_information,
        fields=resource.fields,
        update_cycle=resource.update_cycle,
        row_count=len(resource.rows),
        created_at=resource.created_at,
        ledger_seq=entry.seq if entry else None,
    )
