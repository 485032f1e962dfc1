"""A resource's data: the stream of it, read from where it lives, and the stream an exchange or
a transfer delivers of it under a decision's obligations.

The one seam between the control plane (resources, contracts, policy) and the data plane
(gateway/dataplane, which knows nothing of either). Every delivery reads through here.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from gateway.context import Gateway
from gateway.dataplane import DEFAULT_BATCH_SIZE, BatchStream, Obligations, apply, slice_stream
from gateway.exchanges import obligations as obl
from gateway.resources.models import Resource


def kinds(resource: Resource) -> dict[str, str]:
    """Return {field name: kind} of the resource: the shape each field keeps when masked."""
    return {f["name"]: obl.field_kind(f) for f in resource.fields}


def open_rows(
    session: Session,
    gateway: Gateway,
    resource: Resource,
    *,
    columns: list[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> BatchStream:
    """Return the resource's data as a stream of record batches (only `columns`, if given).

    Raises DataPlaneError (502 data-source-unavailable) when the source cannot be read.
    """
    # Interim: the rows still in the resource's JSON column (replaced by its data address).
    rows = resource.rows
    names = columns if columns is not None else [f["name"] for f in resource.fields]
    table = pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows])
    if not rows:
        table = pa.table({n: pa.array([], pa.null()) for n in names})
    return BatchStream(table.schema, table.to_batches(max_chunksize=batch_size))


def delivery_obligations(
    resource: Resource,
    *,
    fields: list[str],
    obligations: dict[str, Any],
    limit: int | None,
    watermark: str | None,
) -> Obligations:
    """Return the data plane's obligations for a decision's (mask, drop, row_cap) and a limit."""
    caps = [c for c in (obligations.get("row_cap"), limit) if c is not None]
    shapes = kinds(resource)
    return Obligations(
        fields=list(fields),
        drop=frozenset(obligations.get("drop") or []),
        mask={name: shapes.get(name, "text") for name in obligations.get("mask") or []},
        row_cap=min(caps) if caps else None,
        watermark=watermark,
    )


def open_delivery(
    session: Session,
    gateway: Gateway,
    resource: Resource,
    *,
    fields: list[str],
    obligations: dict[str, Any],
    limit: int | None,
    watermark: str | None,
    offset: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> BatchStream:
    """Return the stream delivered of `resource`: rows from `offset`, the decision's obligations
    applied on the fly (fields kept, dropped, masked by kind; rows capped; watermark added)."""
    wanted = delivery_obligations(
        resource, fields=fields, obligations=obligations, limit=limit, watermark=watermark
    )
    read = [n for n in fields if n not in wanted.drop]
    stream = open_rows(session, gateway, resource, columns=read, batch_size=batch_size)
    if offset:
        stream = slice_stream(stream, offset, None)
    return apply(stream, wanted)
