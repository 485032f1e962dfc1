"""The sandbox: DuckDB in-process, one locked-down connection per query, over one Arrow table.

A connection reaches no file and no network (`enable_external_access = false`), loads no
extension, runs on one thread within a memory limit, and is interrupted by a watchdog after a
timeout (DuckDB has no statement timeout). Its configuration is locked before the dataset is
registered, as the only table, `data`. The SQL is built here from a validated plan: every
identifier is quoted, every value is a bound parameter; no consumer text becomes SQL.
What leaves is one row of exact aggregates per group, never a row of the dataset.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from gateway.compute.rules import Plan

if TYPE_CHECKING:  # DuckDB loads at the first query, not with the gateway (its memory)
    import duckdb

MEMORY_LIMIT = "256MB"
TIMEOUT_SECONDS = 10.0


class ComputeFailed(Exception):
    """The engine could not answer (timeout, memory, malformed data): nothing is released."""


def quote(name: str) -> str:
    """Return `name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def connect(*, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """Return a fresh in-memory connection, locked down and its configuration locked."""
    import duckdb

    conn = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "allow_community_extensions": False,
            "threads": 1,
            "memory_limit": memory_limit,
        },
    )
    conn.execute("SET lock_configuration = true")
    return conn


def table_from_rows(
    rows: list[dict[str, Any]], columns: list[str], *, text: frozenset[str] = frozenset()
) -> pa.Table:
    """Return the Arrow table of `columns` of JSON rows: numbers as float64, the rest as text.

    Columns in `text` (group keys, equality filters) are always text, in the form declared
    values take (`str(2024)` is "2024"). The data plane will hand the engine Arrow batches
    directly; JSON rows of mixed types are normalised here.
    """
    arrays = {}
    for name in columns:
        values = [row.get(name) for row in rows]
        numeric = name not in text and all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
        )
        if numeric:
            arrays[name] = pa.array(
                [float(v) if v is not None and math.isfinite(v) else None for v in values],
                type=pa.float64(),
            )
        else:
            arrays[name] = pa.array(
                [None if v is None else str(v) for v in values], type=pa.string()
            )
    if not columns:
        return pa.table({"_row": pa.array(range(len(rows)), type=pa.int64())})
    return pa.table(arrays)


def _as_text(column: pa.ChunkedArray, *, json_text: bool) -> pa.Array:
    """Return a column as text in the form `str()` gives its JSON value (as table_from_rows)."""
    kind = column.type
    if pa.types.is_string(kind) and not json_text:
        return column.combine_chunks() if column.num_chunks else pa.array([], pa.string())
    if pa.types.is_integer(kind):
        return pc.cast(column, pa.string()).combine_chunks()
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "True", "False").combine_chunks()
    values = column.to_pylist()
    if json_text:
        values = [None if v is None else json.loads(v) for v in values]
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def table_from_stream(
    stream: Any, columns: list[str], *, text: frozenset[str] = frozenset()
) -> pa.Table:
    """Return the Arrow table of `columns` of a data-plane stream, typed as `table_from_rows`
    types JSON rows: numeric columns as float64 (non-finite as null), the rest and every column
    in `text` as text in the form declared values take (`str(2024)` is "2024")."""
    with stream:
        table = pa.Table.from_batches(list(stream), schema=stream.schema)
    if not columns:
        return pa.table({"_row": pa.array(range(table.num_rows), type=pa.int64())})
    arrays = {}
    for name in columns:
        field = table.schema.field(name)
        column = table.column(name)
        json_text = bool(field.metadata and field.metadata.get(b"dsgw:json") == b"1")
        numeric = (
            name not in text
            and not json_text
            and (
                pa.types.is_integer(field.type)
                or pa.types.is_floating(field.type)
                or pa.types.is_null(field.type)
            )
        )
        if numeric:
            values = pc.cast(column, pa.float64())
            finite = pc.is_finite(values)
            arrays[name] = pc.if_else(finite, values, pa.scalar(None, pa.float64()))
        else:
            arrays[name] = _as_text(column, json_text=json_text)
    return pa.table(arrays)


@dataclass
class Exact:
    """The exact aggregates per group, keyed by the tuple of group-key values (text)."""

    groups: dict[tuple[str, ...], dict[str, Any]]


def _sql(plan: Plan) -> tuple[str, list[Any]]:
    """Return the query of `plan` and its parameters, in placeholder order."""
    select: list[str] = []
    select_params: list[Any] = []
    subject = quote(plan.subject) if plan.subject else None
    select.append(f"CAST({subject} AS VARCHAR) AS _subject" if subject else "1 AS _subject")
    for i, (name, _) in enumerate(plan.keys):
        select.append(f"CAST({quote(name)} AS VARCHAR) AS _k{i}")
    for i, (name, (lo, hi)) in enumerate(plan.sums.items()):
        # Nulls and non-numbers are imputed with the lower bound, then clamped to [lo, hi].
        select.append(
            f"least(greatest(coalesce(TRY_CAST({quote(name)} AS DOUBLE), ?), ?), ?) AS _s{i}"
        )
        select_params.extend([lo, lo, hi])
    for i, (name, edges) in enumerate(plan.hists.items()):
        value = f"coalesce(TRY_CAST({quote(name)} AS DOUBLE), ?)"
        whens = []
        for j, edge in enumerate(edges[1:-1]):
            whens.append(f"WHEN {value} < ? THEN {j}")
            select_params.extend([edges[0], edge])
        last = len(edges) - 2
        select.append(
            f"CASE {' '.join(whens)} ELSE {last} END AS _h{i}" if whens else f"0 AS _h{i}"
        )
    where: list[str] = []
    where_params: list[Any] = []
    for name, kind, value in plan.filters:
        if kind == "eq":
            where.append(f"CAST({quote(name)} AS VARCHAR) = ?")
            where_params.append(value)
        else:
            where.append(f"TRY_CAST({quote(name)} AS DOUBLE) >= ?")
            where.append(f"TRY_CAST({quote(name)} AS DOUBLE) < ?")
            where_params.extend(value)
    for name, values in plan.keys:
        where.append(f"CAST({quote(name)} AS VARCHAR) IN ({', '.join('?' for _ in values)})")
        where_params.extend(values)
    source = f"SELECT {', '.join(select)} FROM data" + (
        f" WHERE {' AND '.join(where)}" if where else ""
    )
    if subject:
        # Contribution bound: at most max_rows rows per subject ever enter a result (which rows
        # of a subject is decided within that subject's rows alone).
        if plan.max_rows == 1:
            source = f"SELECT DISTINCT ON (_subject) * FROM ({source}) WHERE _subject IS NOT NULL"
        else:
            source = (
                "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY _subject) AS _rn "
                f"FROM ({source}) WHERE _subject IS NOT NULL) WHERE _rn <= {int(plan.max_rows)}"
            )
        subjects = "count(DISTINCT _subject)"
    else:
        subjects = "count(*)"
    keys = [f"_k{i}" for i in range(len(plan.keys))]
    out = [*keys, f"{subjects} AS subjects", "count(*) AS rows"]
    out += [f"sum(_s{i}) AS _sum{i}" for i in range(len(plan.sums))]
    out += [f"histogram(_h{i}) AS _hist{i}" for i in range(len(plan.hists))]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return f"SELECT {', '.join(out)} FROM ({source}){group}", select_params + where_params


def run(
    table: pa.Table,
    plan: Plan,
    *,
    timeout: float = TIMEOUT_SECONDS,
    memory_limit: str = MEMORY_LIMIT,
) -> Exact:
    """Return the exact aggregates of `plan` over `table`, in a sandboxed connection."""
    import duckdb

    sql, params = _sql(plan)
    conn = connect(memory_limit=memory_limit)
    watchdog = threading.Timer(timeout, conn.interrupt)
    try:
        conn.register("data", table)
        watchdog.start()
        fetched = conn.execute(sql, params).fetchall()
    except duckdb.InterruptException as exc:
        raise ComputeFailed(f"the query ran over its {timeout:g} s limit") from exc
    except duckdb.OutOfMemoryException as exc:
        raise ComputeFailed(f"the query needed more than {memory_limit}") from exc
    except duckdb.Error as exc:
        raise ComputeFailed(f"the engine refused the data: {type(exc).__name__}") from exc
    finally:
        watchdog.cancel()
        conn.close()
    nkeys = len(plan.keys)
    names = ["subjects", "rows"]
    names += [f"sum:{n}" for n in plan.sums] + [f"hist:{n}" for n in plan.hists]
    groups = {}
    for row in fetched:
        key = tuple(row[:nkeys])
        groups[key] = dict(zip(names, row[nkeys:], strict=True))
    return Exact(groups)
