"""Idempotency-Key: a retried request returns the first one's result, never doing it twice.

A key is scoped to (subject, route): the same key from the same subject on the same route with
the same body (its canonical JSON's SHA-256) returns what the first request returned; with
another body it is the 422 problem `idempotency-key-reused`. Keys live RETENTION_SECONDS (24 h)
from their first use, then are purged and may be used again.

How one request goes (`claim`, then `settle` or `forget`):

1. `claim` inserts the key as pending and commits, before anything is done; a concurrent request
   with the same key finds it pending (409 `idempotency-key-in-progress`);
2. the route does its work; `settle` stores the reply (JSON) or the id of the object it made, and
   the status; a refusal the client caused (4xx) is a result as well and is stored too;
3. a failure of the gateway (5xx, or an unexpected error) `forget`s the key: nothing was done,
   and a retry runs afresh.

A key whose request died between 1 and 2 stays pending until its retention ends: a retry is told
so (409), never served twice.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.core import clock
from gateway.core.db import Base
from gateway.core.errors import Problem, conflict
from gateway.core.hashing import content_hash

HEADER = "Idempotency-Key"
RETENTION_SECONDS = 24 * 3600
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, as the IETF draft's examples


class IdempotencyKey(Base):
    """One key a subject used on one route: the request's hash and, once done, its result."""

    __tablename__ = "idempotency_keys"

    subject_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    route: Mapped[str] = mapped_column(String(60), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    response: Mapped[dict | None]
    object_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


def check_key(key: str) -> str:
    """Return the key, else raise 422 for one that is not 1..200 visible ASCII characters."""
    if not KEY_PATTERN.match(key):
        raise Problem(
            422,
            "invalid-request",
            "Invalid request",
            f"{HEADER} must be 1 to 200 visible ASCII characters",
        )
    return key


def claim(
    session: Session, *, subject_id: str, route: str, key: str, body: Any
) -> IdempotencyKey | None:
    """Claim `key` for this request and commit; return None when it is new, else the earlier
    request's settled row (the caller replays it). Raise 422 when the key came with another
    body, 409 while the earlier request is still running."""
    check_key(key)
    now = clock.now()
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < now))
    digest = content_hash(body)
    row = IdempotencyKey(
        subject_id=subject_id,
        route=route,
        key=key,
        request_hash=digest,
        status=None,
        response=None,
        object_id=None,
        created_at=now,
        expires_at=now + timedelta(seconds=RETENTION_SECONDS),
    )
    try:
        with session.begin_nested():
            session.add(row)
        session.commit()
        return None
    except IntegrityError:
        session.rollback()
    found = session.execute(
        select(IdempotencyKey).where(
            IdempotencyKey.subject_id == subject_id,
            IdempotencyKey.route == route,
            IdempotencyKey.key == key,
        )
    ).scalar_one()
    if found.request_hash != digest:
        raise Problem(
            422,
            "idempotency-key-reused",
            "Idempotency key reused",
            f"the {HEADER} {key!r} was used with another request body on {route} (first at "
            f"{clock.rfc3339(found.created_at)}); use a new key for a new request",
        )
    if found.status is None:
        raise conflict(
            "idempotency-key-in-progress",
            "Request with this key in progress",
            f"the request first sent with {HEADER} {key!r} has not finished; retry later",
        )
    return found


def settle(
    session: Session,
    *,
    subject_id: str,
    route: str,
    key: str,
    status: int,
    response: dict[str, Any] | None = None,
    object_id: str | None = None,
) -> None:
    """Store the claimed key's result and commit."""
    row = session.get(IdempotencyKey, (subject_id, route, key))
    if row is None:  # purged meanwhile (retention passed during the request): nothing to keep
        return
    row.status, row.response, row.object_id = status, response, object_id
    session.commit()


def forget(session: Session, *, subject_id: str, route: str, key: str) -> None:
    """Drop a claimed key whose request failed on the gateway's side, so a retry runs afresh."""
    session.rollback()
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.subject_id == subject_id,
            IdempotencyKey.route == route,
            IdempotencyKey.key == key,
            IdempotencyKey.status.is_(None),
        )
    )
    session.commit()


def run(
    session: Session,
    *,
    subject_id: str,
    route: str,
    key: str | None,
    body: Any,
    work,
    replay,
) -> Any:
    """Return `work()`'s result once per key: a retry gets `replay(row)` of the stored row.

    `work()` returns (status, response, object id or None, result to return), the response
    being None or a function returning the JSON to store: it is called only when a key is
    given, so a request without one never renders its reply twice. A Problem `work()` raises
    with a status below 500 is stored and raised again on every retry. `body` (the request's
    JSON, or a function returning it) is rendered and hashed only when a key is given.
    """
    if key is None:
        return work()[3]
    if callable(body):  # rendered only when a key needs it
        body = body()
    found = claim(session, subject_id=subject_id, route=route, key=key, body=body)
    if found is not None:
        return replay(found)
    try:
        status, response, object_id, result = work()
    except Problem as problem:
        if problem.status >= 500:
            forget(session, subject_id=subject_id, route=route, key=key)
            raise
        session.rollback()  # whatever the refused request left uncommitted is not kept
        stored = {"problem": problem.body(), "headers": problem.headers}
        settle(session, subject_id=subject_id, route=route, key=key, status=problem.status,
               response=stored)  # fmt: skip
        raise
    except BaseException:
        forget(session, subject_id=subject_id, route=route, key=key)
        raise
    stored = response() if response is not None else None
    settle(session, subject_id=subject_id, route=route, key=key, status=status,
           response=stored, object_id=object_id)  # fmt: skip
    return result


class StoredProblem(Problem):
    """A refusal replayed from a stored key: the same status and body as the first time."""

    def __init__(self, stored: dict[str, Any], status: int) -> None:
        body = dict(stored["problem"])
        slug = str(body.pop("type", "")).removeprefix("urn:dsgw:problem:")
        title, detail = body.pop("title", ""), body.pop("detail", "")
        body.pop("status", None)
        body.pop("instance", None)
        super().__init__(status, slug, title, detail, headers=stored.get("headers"), **body)


def replay_problem(row: IdempotencyKey) -> None:
    """Raise the stored refusal of `row` again, if it was one."""
    if row.response is not None and "problem" in row.response and (row.status or 0) >= 400:
        raise StoredProblem(row.response, row.status or 400)
