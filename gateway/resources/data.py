"""A resource's data: the stream of it, read from where it lives, and the stream an exchange or
a transfer delivers of it under a decision's obligations.

The one seam between the control plane (resources, contracts, policy) and the data plane
(gateway/dataplane, which knows nothing of either). Every delivery reads through here.

A resource's data lives either at an external source (`resources.data_address`, the public part
of a sql, http, object or files address, its secret part sealed in `resources.data_secret`) or,
for rows posted with the registration, in the embedded store (`embedded_datasets`, one Parquet
file per resource in the gateway's own database).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, object_session

from gateway.context import Gateway
from gateway.dataplane import (
    DEFAULT_BATCH_SIZE,
    BatchStream,
    DataPlaneConfig,
    Obligations,
    SqlAddress,
    apply,
    open_source,
    parse_source_address,
    slice_stream,
)
from gateway.dataplane.embedded import TableSource, decoded, json_rows, rows_to_parquet
from gateway.dataplane.errors import DataPlaneError, address_invalid, source_unavailable
from gateway.dataplane.secrets import SecretBox, SecretsError
from gateway.exchanges import obligations as obl
from gateway.resources.commitment import (
    ADDRESS_SCHEME,
    SCHEME,
    address_commitment,
    dataset_commitment,
)
from gateway.resources.models import EmbeddedDataset, Resource

# Rows a product's quality report is computed on: the whole of an embedded dataset (at most
# 100,000 rows), the first this many rows of an external source.
SAMPLE_ROWS = 20_000


def config(gateway: Gateway) -> DataPlaneConfig:
    """Return where the gateway's local kinds live (<state>/data for `files`)."""
    return DataPlaneConfig.for_state_dir(gateway.settings.state_dir)


def secret_box(gateway: Gateway) -> SecretBox:
    """Return the box that seals data-address secrets (its key in the state's keys folder)."""
    return SecretBox.for_keys_dir(gateway.settings.keys_dir)


def purpose(resource_id: str) -> str:
    """Return the associated data a resource's sealed secret is bound to."""
    return f"resource:{resource_id}"


def seal(gateway: Gateway, address: Any, resource_id: str) -> str | None:
    """Return the address's secret part sealed for the resource (None when it has none)."""
    secret = address.secret
    if not secret.has_any():
        return None
    values = {k: v.get_secret_value() for k, v in secret if v is not None}
    return secret_box(gateway).seal(values, purpose=purpose(resource_id))


def address_of(gateway: Gateway, resource: Resource) -> Any | None:
    """Return the resource's full address (its secret unsealed), None for embedded rows."""
    if resource.data_address is None:
        return None
    secret: dict[str, Any] = {}
    if resource.data_secret:
        try:
            secret = secret_box(gateway).open_secret(
                resource.data_secret, purpose=purpose(resource.id)
            )
        except SecretsError as exc:
            raise source_unavailable(
                f"the credentials of resource {resource.id}'s source do not open: {exc}"
            ) from None
    try:
        return parse_source_address({**resource.data_address, "secret": secret})
    except ValidationError as exc:
        raise source_unavailable(
            f"resource {resource.id}'s data address no longer validates: {exc.errors()[0]['msg']}"
        ) from None


def dataset(session: Session | None, resource: Resource) -> EmbeddedDataset | None:
    """Return the resource's embedded dataset, if it has one."""
    session = session or object_session(resource)
    if session is None or resource.data_address is not None:
        return None
    return session.get(EmbeddedDataset, resource.id)


def store_rows(
    session: Session, resource: Resource, rows: list[dict[str, Any]], *, now: datetime
) -> EmbeddedDataset:
    """Keep `rows` as the resource's embedded dataset, with their commitment as posted."""
    data, count, sha256 = rows_to_parquet(rows)
    stored = session.get(EmbeddedDataset, resource.id)
    if stored is None:
        stored = EmbeddedDataset(resource_id=resource.id, created_at=now)
        session.add(stored)
    stored.rows = count
    stored.sha256 = sha256
    stored.parquet = data
    stored.commitment = dataset_commitment(rows, resource.dataset_salt)
    return stored


def public_address(session: Session | None, resource: Resource) -> dict[str, Any]:
    """Return the address a reply shows: the public part, or the embedded dataset's summary."""
    if resource.data_address is not None:
        return dict(resource.data_address)
    stored = dataset(session, resource)
    return {
        "type": "embedded",
        "rows": stored.rows if stored else 0,
        "sha256": stored.sha256 if stored else None,
    }


def row_count(session: Session | None, resource: Resource) -> int | None:
    """Return the rows of an embedded dataset; None for an external source (live, uncounted)."""
    if resource.data_address is not None:
        return None
    stored = dataset(session, resource)
    return stored.rows if stored else 0


def commitment(session: Session | None, resource: Resource) -> dict[str, str]:
    """Return the dataset's commitment and its scheme (gateway/resources/commitment.py)."""
    if resource.data_address is not None:
        value = address_commitment(resource.data_address, resource.fields, resource.dataset_salt)
        return {"dataset_commitment": value, "commitment_scheme": ADDRESS_SCHEME}
    stored = dataset(session, resource)
    value = stored.commitment if stored else dataset_commitment([], resource.dataset_salt)
    return {"dataset_commitment": value, "commitment_scheme": SCHEME}


def check_reach(gateway: Gateway, address: Any) -> None:
    """Refuse (422 data-address-invalid) a `sql` address that reaches what no holder may read
    through the gateway: a SQLite file outside the gateway's data folder (`<state>/data`), or
    the gateway's own database."""
    if not isinstance(address, SqlAddress):
        return
    url = make_url(address.url)
    own = make_url(gateway.settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:" or path.startswith("file:"):
            raise address_invalid("a SQLite source is a database file in the gateway's data folder")
        root = Path(os.path.realpath(config(gateway).files_root))
        target = Path(os.path.realpath(path))
        if root not in target.parents:
            raise address_invalid(
                "a SQLite source must be a file in the gateway's data folder "
                f"(<state>/data); {Path(path).name!r} is not"
            )
        return
    if (
        url.get_backend_name() == own.get_backend_name()
        and (url.host or "localhost") == (own.host or "localhost")
        and (url.port or 5432) == (own.port or 5432)
        and url.database == own.database
    ):
        raise address_invalid("the gateway's own database is not a data source")


def source_columns(gateway: Gateway, address: Any) -> list[str]:
    """Return the column names the source at `address` has (opening it; 502 if it cannot)."""
    try:
        with open_source(address, config=config(gateway)).open(batch_size=1) as stream:
            return list(stream.schema.names)
    except DataPlaneError:
        raise
    except Exception as exc:  # a driver's own failure: never a 500, never its message
        raise source_unavailable(
            f"the {address.type} source could not be opened ({type(exc).__name__})"
        ) from None


def column_mismatch(columns: list[str], declared: list[str]) -> str | None:
    """Return what differs between a source's columns and the declared fields, else None."""
    missing = [n for n in declared if n not in columns]
    extra = [n for n in columns if n not in declared]
    if not missing and not extra:
        return None
    said = []
    if missing:
        said.append(f"declared fields the source lacks: {missing}")
    if extra:
        said.append(f"source columns not declared: {extra}")
    return "; ".join(said)


def sample_rows(
    session: Session, gateway: Gateway, resource: Resource, *, limit: int = SAMPLE_ROWS
) -> list[dict[str, Any]]:
    """Return the rows the product's quality report and default compute terms are computed on,
    as JSON rows (declared fields): all of an embedded dataset (at most 100,000 rows), the first
    `limit` rows of an external source (held as Python rows: kept small, so that publishing a
    product of a large source does not raise the gateway's peak memory)."""
    names = [f["name"] for f in resource.fields]
    stream = open_rows(session, gateway, resource, columns=names)
    external = address_of(gateway, resource) is not None
    return json_rows(slice_stream(stream, 0, limit) if external else stream)


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
    names = columns if columns is not None else [f["name"] for f in resource.fields]
    address = address_of(gateway, resource)
    if address is None:
        stored = dataset(session, resource)
        if stored is None:
            raise source_unavailable(f"resource {resource.id} has no embedded dataset")
        try:
            table = decoded(stored.sha256, lambda: stored.parquet)
        except ValueError as exc:
            raise source_unavailable(f"resource {resource.id}: {exc}") from None
        return TableSource(table).open(batch_size=batch_size, columns=names)
    try:
        return open_source(address, config=config(gateway)).open(
            batch_size=batch_size, columns=names
        )
    except DataPlaneError:
        raise
    except Exception as exc:  # a driver's own failure: never a 500, never its message
        raise source_unavailable(
            f"the {address.type} source of resource {resource.id} could not be opened "
            f"({type(exc).__name__})"
        ) from None


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
