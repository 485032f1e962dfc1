"""Registering data resources (数据资源登记): apply, accept, review, publicise, code; amend later.

A holder applies; the platform (admin) accepts and reviews it and opens the publicity (公示)
window; any authenticated participant may object while it is open, which sends the registration
back for review; once the window has closed the admin codes it (赋码): the resource gets its
stable catalogue code and the registration a certificate signed by the gateway. A coded
resource takes later registrations: change, correction, cancellation, through the same steps.
Only a coded resource can be authorised or turned into products (`require_coded`).
"""

from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.context import Gateway
from gateway.core import clock
from gateway.core.db import fetch
from gateway.core.errors import Problem, conflict, forbidden, not_found, unprocessable
from gateway.core.hashing import content_hash
from gateway.core.ids import new_id
from gateway.core.states import StateMachine
from gateway.dataplane.embedded import parquet_columns as embedded_columns
from gateway.evidence.service import commit, record
from gateway.participants.models import Participant
from gateway.resources import certificate, data
from gateway.resources.commitment import new_salt
from gateway.resources.models import (
    CatalogueCode,
    Registration,
    RegistrationCreate,
    RegistrationRead,
    Resource,
    ResourceCreate,
    ResourceRead,
)
from ledger import Entry, Signer

LIFECYCLE = StateMachine(
    "registration",
    {
        "applied": {"accept": "accepted", "reject": "rejected"},
        "accepted": {"review": "reviewed", "reject": "rejected"},
        "reviewed": {"publicise": "publicised", "reject": "rejected"},
        # An objection sends it back for review; `code` only once the window has closed.
        "publicised": {"object": "accepted", "code": "coded"},
        "coded": {},
        "rejected": {},
    },
)
OPEN_STATES = ("applied", "accepted", "reviewed", "publicised")
EVENTS = {
    "accept": "accepted",
    "review": "reviewed",
    "publicise": "publicised",
    "object": "objected",
    "code": "coded",
    "reject": "rejected",
}
ADMIN_ACTIONS = ("accept", "review", "publicise", "code", "reject")


def _record_of(resource: Resource) -> dict:
    """Return the resource's registration record as ResourceCreate fields (data apart)."""
    return {
        "name": resource.name,
        "domain": resource.domain,
        "grade": resource.grade,
        "level": resource.level,
        "personal_information": resource.personal_information,
        "sensitive_personal_information": resource.sensitive_personal_information,
        "fields": resource.fields,
        "update_cycle": resource.update_cycle,
        "details": resource.details or {},
    }


def commitment_of(resource: Resource) -> dict:
    """Return the dataset's commitment and its scheme (never the salt)."""
    return data.commitment(None, resource)


def data_evidence(resource: Resource) -> dict:
    """Return what the ledger says of where the data lives: the public address, or the rows."""
    if resource.data_address is not None:
        return {"data_address": dict(resource.data_address)}
    return {"rows": data.row_count(None, resource)}


def check_source(gateway: Gateway, address, fields: list[dict]) -> None:
    """Open the source at `address` and hold its columns to the declared fields: 502
    data-source-unavailable when it cannot be read, 422 naming the fields that differ."""
    data.check_reach(gateway, address)
    columns = data.source_columns(gateway, address)
    differs = data.column_mismatch(columns, [f["name"] for f in fields])
    if differs:
        raise Problem(
            422,
            "data-source-mismatch",
            "Source does not match the fields",
            f"the {address.type} source's columns are not the declared fields: {differs}",
            source_columns=columns,
        )


def canonical_record(resource: Resource, holder: Participant) -> dict:
    """Return the record a certificate covers: everything registered, the dataset by its
    commitment (keyed, so that the rows cannot be guessed from it)."""
    return {
        "resource": resource.id,
        "code": resource.code,
        "version": resource.version,
        "status": resource.status,
        "holder": {"id": holder.id, "name": holder.name, "uscc": holder.uscc},
        "name": resource.name,
        "domain": resource.domain,
        "grade": resource.grade,
        "level": resource.level,
        "personal_information": resource.personal_information,
        "sensitive_personal_information": resource.sensitive_personal_information,
        "fields": resource.fields,
        "update_cycle": resource.update_cycle,
        "details": resource.details or {},
        "row_count": data.row_count(None, resource),
        **(
            {"data_address": dict(resource.data_address)}
            if resource.data_address is not None
            else {}
        ),
        **commitment_of(resource),
    }


def _amended(resource: Resource, changes: dict) -> ResourceCreate:
    """Return the resource's record with `changes` applied, validated, else raise 422."""
    changes = {k: v for k, v in changes.items() if k != "data_address"}
    merged = {**_record_of(resource), **changes}
    if "fields" in changes:
        # A new field list states its own flags: the resource's are derived again from it,
        # unless the change states them too.
        for flag in ("personal_information", "sensitive_personal_information"):
            merged[flag] = changes.get(flag)
    if "grade" in changes and changes["grade"] != "general" and "level" not in changes:
        merged["level"] = None
    try:
        return ResourceCreate.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "changes"
        raise unprocessable(f"the amended record is invalid: {where}: {first['msg']}") from None


def _registration_data(registration: Registration, **extra) -> dict:
    return {
        "registration": registration.id,
        "resource": registration.resource_id,
        "kind": registration.kind,
        "state": registration.state,
        **extra,
    }


def apply(
    session: Session,
    signer: Signer,
    *,
    body: ResourceCreate,
    holder_id: str,
    gateway: Gateway,
) -> tuple[Resource, Registration, Entry]:
    """Apply for the initial registration of a resource held by `holder_id`; record it.

    Its data is the address given (the source opened and its columns held to the fields, the
    secret sealed) or the rows posted, kept in the embedded store.
    """
    now = clock.now()
    fields = [f.model_dump(exclude_none=True) for f in body.fields]
    if body.data_address is not None:
        check_source(gateway, body.data_address, fields)
    resource = Resource(
        id=new_id("res"),
        holder_id=holder_id,
        name=body.name,
        domain=body.domain,
        grade=body.grade,
        level=body.level,
        personal_information=body.personal_information,
        sensitive_personal_information=body.sensitive_personal_information,
        fields=fields,
        update_cycle=body.update_cycle,
        dataset_salt=new_salt(),
        details=body.details.model_dump(),
        status="registering",
        code=None,
        version=0,
        created_at=now,
    )
    if body.data_address is not None:
        resource.data_address = body.data_address.public()
        resource.data_secret = data.seal(gateway, body.data_address, resource.id)
    session.add(resource)
    session.flush()
    if body.data_address is None:
        data.store_rows(session, resource, body.rows, now=now)
        session.flush()
    registration, entry = _open_registration(
        session,
        signer,
        resource=resource,
        kind="initial",
        holder_id=holder_id,
        changes={},
        reason="initial registration",
        evidence=dict(
            name=resource.name,
            domain=resource.domain,
            grade=resource.grade,
            level=resource.level,
            personal_information=resource.personal_information,
            sensitive_personal_information=resource.sensitive_personal_information,
            fields=resource.fields,
            details=resource.details,
            **data_evidence(resource),
            **commitment_of(resource),
        ),
    )
    return resource, registration, entry


def apply_later(
    session: Session,
    signer: Signer,
    *,
    resource_id: str,
    body: RegistrationCreate,
    holder_id: str,
    gateway: Gateway,
) -> tuple[Registration, Entry]:
    """Apply for a change, correction or cancellation of a coded resource; record it."""
    resource = get(session, resource_id, for_update=True)
    if resource.holder_id != holder_id:
        raise forbidden(f"resource {resource.id} is held by {resource.holder_id}, not {holder_id}")
    require_coded(resource)
    pending = open_registration(session, resource.id)
    if pending is not None:
        raise conflict(
            "registration-open",
            "A registration is already open",
            f"resource {resource.id} has the {pending.kind} registration {pending.id} "
            f"({pending.state}) open; finish it first",
            registration_id=pending.id,
            current_state=pending.state,
        )
    changes = body.changes.model_dump(mode="json", exclude_unset=True)
    sealed = None
    if changes:
        amended = _amended(resource, changes)
        _check_amended_data(session, gateway, resource, body.changes, amended)
    if body.changes.data_address is not None:
        # The public part goes in the changes (replies, ledger); the secret sealed beside.
        changes["data_address"] = body.changes.data_address.public()
        sealed = data.seal(gateway, body.changes.data_address, resource.id)
    registration, entry = _open_registration(
        session,
        signer,
        resource=resource,
        kind=body.kind,
        holder_id=holder_id,
        changes=changes,
        reason=body.reason,
        evidence=dict(
            code=resource.code,
            changes=changes,
            changes_hash=content_hash(changes),
            reason=body.reason,
        ),
        data_secret=sealed,
    )
    return registration, entry


def _check_amended_data(
    session: Session, gateway: Gateway, resource: Resource, changes, amended: ResourceCreate
) -> None:
    """Hold the data to the amended fields: a new or kept external source is opened and its
    columns compared; embedded rows may not use a field the change removes."""
    if changes.data_address is None and "fields" not in changes.model_fields_set:
        return
    fields = [f.model_dump(exclude_none=True) for f in amended.fields]
    address = changes.data_address or data.address_of(gateway, resource)
    if address is not None:
        check_source(gateway, address, fields)
        return
    stored = data.dataset(session, resource)
    used = embedded_columns(stored.parquet) if stored else []
    undeclared = [n for n in used if n not in {f["name"] for f in fields}]
    if undeclared:
        raise unprocessable(
            f"the amended record is invalid: the resource's rows have fields not declared: "
            f"{undeclared[:10]}"
        )


def _open_registration(
    session: Session,
    signer: Signer,
    *,
    resource: Resource,
    kind: str,
    holder_id: str,
    changes: dict,
    reason: str,
    evidence: dict,
    data_secret: str | None = None,
) -> tuple[Registration, Entry]:
    """Open a registration of `resource` in state applied, record it with `evidence`, commit."""
    now = clock.now()
    registration = Registration(
        id=new_id("reg"),
        resource_id=resource.id,
        kind=kind,
        state="applied",
        applicant_id=holder_id,
        changes=changes,
        reason=reason,
        objections=[],
        data_secret=data_secret,
        created_at=now,
        updated_at=now,
    )
    session.add(registration)
    session.flush()
    entry = record(
        session,
        signer,
        type="registration.applied",
        data=_registration_data(registration, holder=holder_id, **evidence),
    )
    commit(session)
    return registration, entry


def advance(
    session: Session,
    signer: Signer,
    *,
    registration_id: str,
    action: str,
    actor: Participant,
    reason: str = "",
    window: timedelta | None = None,
    issuer: str = "",
) -> tuple[Registration, Entry]:
    """Take one step of a registration (accept, review, publicise, object, code, reject)."""
    registration = get_registration(session, registration_id, viewer=actor, for_update=True)
    if action in ADMIN_ACTIONS and "admin" not in actor.roles:
        raise forbidden(f"only the platform admin can {action} a registration")
    now = clock.now()
    before = registration.state
    target = LIFECYCLE.advance(registration.id, before, action)
    extra: dict = {"by": actor.id}
    if reason:
        extra["reason"] = reason
    ends = registration.publicity_ends_at
    if action == "object":
        if now >= ends:
            raise conflict(
                "publicity-closed",
                "Publicity closed",
                f"the objection window of registration {registration.id} closed at "
                f"{clock.rfc3339(ends)}",
                current_state=before,
                publicity_ends_at=clock.rfc3339(ends),
                allowed_actions=["code"],
            )
        objection = {"by": actor.id, "reason": reason, "at": clock.rfc3339(now)}
        registration.objections = [*registration.objections, objection]
    if action == "code" and now < ends:
        raise conflict(
            "publicity-open",
            "Publicity still open",
            f"registration {registration.id} is under publicity until {clock.rfc3339(ends)}; "
            "it can be coded from then on",
            current_state=before,
            publicity_ends_at=clock.rfc3339(ends),
            allowed_actions=["object"],
        )
    if action == "publicise":
        registration.publicity_starts_at = now
        registration.publicity_ends_at = now + (window or timedelta(0))
        extra["publicity_starts_at"] = clock.rfc3339(now)
        extra["publicity_ends_at"] = clock.rfc3339(registration.publicity_ends_at)
    registration.state = target
    registration.updated_at = now
    resource = get(session, registration.resource_id, for_update=True)
    if action == "reject" and registration.kind == "initial":
        resource.status = "rejected"
    if action == "code":
        extra.update(_code(session, signer, registration, resource, now=now, issuer=issuer))
    entry = record(
        session,
        signer,
        type=f"registration.{EVENTS[action]}",
        data=_registration_data(registration, **{"from": before}, **extra),
    )
    commit(session)
    return registration, entry


def _code(
    session: Session,
    signer: Signer,
    registration: Registration,
    resource: Resource,
    *,
    now: datetime,
    issuer: str,
) -> dict:
    """Apply a registration to its resource, code it and sign its certificate; return evidence."""
    if registration.kind == "initial":
        number = CatalogueCode(resource_id=resource.id, created_at=now)
        session.add(number)
        session.flush()
        resource.code = f"DR-{now.year:04d}-{number.seq:06d}"
        resource.status = "coded"
    elif registration.kind in ("change", "correction"):
        amended = _amended(resource, registration.changes)
        resource.name = amended.name
        resource.domain = amended.domain
        resource.grade = amended.grade
        resource.level = amended.level
        resource.personal_information = amended.personal_information
        resource.sensitive_personal_information = amended.sensitive_personal_information
        resource.fields = [f.model_dump(exclude_none=True) for f in amended.fields]
        resource.update_cycle = amended.update_cycle
        resource.details = amended.details.model_dump()
        if "data_address" in registration.changes:
            _move_to(session, resource, registration)
    else:
        resource.status = "cancelled"
        from gateway.products import service as products

        products.suspend_for_resource(
            session,
            signer,
            resource_id=resource.id,
            reason=f"registration of resource {resource.code} cancelled by {registration.id}",
        )
    resource.version += 1
    registration.code = resource.code
    holder = session.get(Participant, resource.holder_id)
    record_ = canonical_record(resource, holder)
    payload = {
        "type": certificate.PAYLOAD_TYPE,
        "issuer": issuer,
        "registration": registration.id,
        "kind": registration.kind,
        "code": resource.code,
        "coded_at": clock.rfc3339(now),
        "publicity": {
            "from": clock.rfc3339(registration.publicity_starts_at),
            "until": clock.rfc3339(registration.publicity_ends_at),
            "objections": len(registration.objections),
        },
        "record": record_,
        "record_hash": content_hash(record_),
    }
    registration.certificate = certificate.sign(payload, signer)
    return {
        "code": resource.code,
        "version": resource.version,
        "resource_status": resource.status,
        "record_hash": payload["record_hash"],
        "certificate_hash": content_hash(registration.certificate),
    }


def _move_to(session: Session, resource: Resource, registration: Registration) -> None:
    """Point the resource at the change's new address; embedded rows it leaves are dropped."""
    stored = data.dataset(session, resource)
    resource.data_address = dict(registration.changes["data_address"])
    resource.data_secret = registration.data_secret
    if stored is not None:
        session.delete(stored)


def require_coded(resource: Resource) -> None:
    """Raise 409 unless the resource is coded (registered and not cancelled)."""
    if resource.status != "coded":
        raise conflict(
            "resource-not-coded",
            "Resource not coded",
            f"resource {resource.id} is {resource.status}; only a coded resource can be "
            "authorised, productised or amended",
            current_state=resource.status,
        )


def open_registration(session: Session, resource_id: str) -> Registration | None:
    """Return the resource's registration still in progress, if any."""
    return session.execute(
        select(Registration).where(
            Registration.resource_id == resource_id, Registration.state.in_(OPEN_STATES)
        )
    ).scalar_one_or_none()


def registrations_of(session: Session, resource_id: str) -> list[Registration]:
    """Return a resource's registrations, oldest first."""
    return list(
        session.execute(
            select(Registration)
            .where(Registration.resource_id == resource_id)
            .order_by(Registration.created_at, Registration.id)
        ).scalars()
    )


def _overseer(participant: Participant) -> bool:
    return bool({"admin", "auditor"} & set(participant.roles))


def sees_unpublicised(participant: Participant, holder_id: str) -> bool:
    """Return whether `participant` sees what `holder_id` registered before its publicity:
    the holder itself, the platform admin and auditors."""
    return participant.id == holder_id or _overseer(participant)


def registration_visible(registration: Registration, participant: Participant) -> bool:
    """Return whether `participant` may see the registration: once publicised (公示) anyone,
    before that only its holder (the applicant), the admin and auditors."""
    return registration.publicity_starts_at is not None or sees_unpublicised(
        participant, registration.applicant_id
    )


def resource_visible(session: Session, resource: Resource, participant: Participant) -> bool:
    """Return whether `participant` may know of the resource: its holder, the admin and
    auditors always; others once its registration has been publicised (or it was coded)."""
    if sees_unpublicised(participant, resource.holder_id) or resource.code is not None:
        return True
    publicised = select(Registration.id).where(
        Registration.resource_id == resource.id, Registration.publicity_starts_at.is_not(None)
    )
    return session.execute(publicised.limit(1)).first() is not None


def list_registrations(
    session: Session, *, state: str | None, offset: int, limit: int, viewer: Participant
) -> list[Registration]:
    """Return the registrations `viewer` may see (in one state, if given), newest first."""
    query = select(Registration).order_by(Registration.updated_at.desc(), Registration.id)
    if state is not None:
        query = query.where(Registration.state == state)
    if not _overseer(viewer):
        query = query.where(
            or_(
                Registration.publicity_starts_at.is_not(None),
                Registration.applicant_id == viewer.id,
            )
        )
    return list(session.execute(query.offset(offset).limit(limit)).scalars())


def list_resources(
    session: Session, *, viewer: Participant, offset: int, limit: int
) -> list[Resource]:
    """Return the resources `viewer` holds (every one to the admin and auditors), oldest first."""
    query = select(Resource).order_by(Resource.created_at, Resource.id)
    if not _overseer(viewer):
        query = query.where(Resource.holder_id == viewer.id)
    return list(session.execute(query.offset(offset).limit(limit)).scalars())


def get(session: Session, resource_id: str, *, for_update: bool = False) -> Resource:
    """Return the resource (locked for update when asked), else raise 404."""
    return fetch(session, Resource, resource_id, kind="resource", for_update=for_update)


def get_registration(
    session: Session,
    registration_id: str,
    *,
    viewer: Participant | None = None,
    for_update: bool = False,
) -> Registration:
    """Return the registration (locked for update when asked), else raise 404; also 404, as
    if it did not exist, when `viewer` is given and may not see it yet."""
    query = select(Registration).where(Registration.id == registration_id)
    if for_update:
        query = query.with_for_update()
    registration = session.execute(query).scalar_one_or_none()
    if registration is None or (
        viewer is not None and not registration_visible(registration, viewer)
    ):
        raise not_found("registration", registration_id)
    return registration


def registration_read(registration: Registration, entry: Entry | None = None) -> RegistrationRead:
    """Return the API view of a registration, with the actions it allows now."""
    return RegistrationRead(
        id=registration.id,
        resource_id=registration.resource_id,
        kind=registration.kind,
        state=registration.state,
        allowed_actions=LIFECYCLE.actions(registration.state),
        applicant_id=registration.applicant_id,
        changes=registration.changes,
        reason=registration.reason,
        publicity_starts_at=registration.publicity_starts_at,
        publicity_ends_at=registration.publicity_ends_at,
        objections=registration.objections,
        code=registration.code,
        created_at=registration.created_at,
        updated_at=registration.updated_at,
        ledger_seq=entry.seq if entry else None,
    )


def to_read(
    resource: Resource,
    entry: Entry | None = None,
    *,
    registration: Registration | None = None,
    show_salt: bool = False,
) -> ResourceRead:
    """Return the API view of a resource (its rows are never shown here; its dataset's salt
    only when `show_salt`, for the holder and auditors)."""
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
        data_address=data.public_address(None, resource),
        row_count=data.row_count(None, resource),
        details=resource.details or {},
        status=resource.status,
        code=resource.code,
        version=resource.version,
        **commitment_of(resource),
        dataset_salt=resource.dataset_salt if show_salt else None,
        registration=registration_read(registration) if registration else None,
        created_at=resource.created_at,
        ledger_seq=entry.seq if entry else None,
    )
