"""Applying a decision's obligations to rows: keep, drop and mask fields, cap rows, watermark."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gateway.core.hashing import content_hash

KNOWN = frozenset({"mask", "drop", "row_cap", "min_group_size", "watermark"})


class UnsupportedObligation(Exception):
    """The decision carries an obligation this gateway cannot honour: the exchange is refused."""


def mask_value(value: Any) -> Any:
    """Return a masked value: keep the first 3 and last 4 characters of long text, hide the rest."""
    if value is None:
        return None
    text = str(value)
    if len(text) >= 11:
        return text[:3] + "*" * (len(text) - 7) + text[-4:]
    return "*" * len(text)


def check_known(obligations: dict[str, Any], *, delivery: str) -> None:
    """Raise UnsupportedObligation when an obligation is unknown or cannot apply to `delivery`."""
    unknown = sorted(set(obligations) - KNOWN)
    if unknown:
        raise UnsupportedObligation(f"unknown obligations {unknown}")
    if obligations.get("min_group_size") is not None and delivery != "compute":
        raise UnsupportedObligation(
            "min_group_size applies to aggregates only, and this is a row delivery"
        )


def watermark_for(exchange_id: str, consumer_id: str) -> str:
    """Return the mark that ties delivered rows to this exchange and consumer."""
    return hashlib.sha256(f"{exchange_id}|{consumer_id}".encode()).hexdigest()[:24]


def apply(
    rows: list[dict[str, Any]],
    *,
    fields: list[str],
    obligations: dict[str, Any],
    limit: int | None,
    watermark: str | None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Return the delivered field names and rows after every obligation."""
    drop = set(obligations.get("drop") or [])
    mask = set(obligations.get("mask") or [])
    kept = [name for name in fields if name not in drop]
    cap = obligations.get("row_cap")
    caps = [c for c in (cap, limit) if c is not None]
    selected = rows[: min(caps)] if caps else rows
    delivered = []
    for row in selected:
        out = {
            name: (mask_value(row.get(name)) if name in mask else row.get(name)) for name in kept
        }
        if watermark is not None:
            out["_watermark"] = watermark
        delivered.append(out)
    return kept, delivered


def aggregate(
    rows: list[dict[str, Any]],
    *,
    fields: list[str],
    group_by: list[str],
    obligations: dict[str, Any],
    watermark: str | None,
) -> tuple[list[str], list[dict[str, Any]], int]:
    """Return the columns, the aggregate rows and the number of groups suppressed (compute).

    Raw rows never leave: one output row per group of `group_by` values, with `_count` (rows in
    the group) and `<field>_avg` for every other requested field whose values are all numbers.
    A group smaller than `min_group_size` is suppressed. Masked group keys stay masked; dropped
    fields are neither grouped on nor averaged.
    """
    drop = set(obligations.get("drop") or [])
    mask = set(obligations.get("mask") or [])
    keys = [name for name in group_by if name not in drop]
    measured = [name for name in fields if name not in drop and name not in keys]
    numeric = [
        name
        for name in measured
        if rows
        and all(
            isinstance(row.get(name), int | float) and not isinstance(row.get(name), bool)
            for row in rows
        )
    ]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple(mask_value(row.get(name)) if name in mask else row.get(name) for name in keys)
        groups.setdefault(key, []).append(row)
    smallest = obligations.get("min_group_size") or 0
    out, suppressed = [], 0
    for key, members in sorted(groups.items(), key=lambda item: json_key(item[0])):
        if len(members) < smallest:
            suppressed += 1
            continue
        record: dict[str, Any] = dict(zip(keys, key, strict=True))
        record["_count"] = len(members)
        for name in numeric:
            record[f"{name}_avg"] = round(sum(m[name] for m in members) / len(members), 6)
        if watermark is not None:
            record["_watermark"] = watermark
        out.append(record)
    columns = [*keys, "_count", *(f"{name}_avg" for name in numeric)]
    return columns, out, suppressed


def json_key(values: tuple) -> str:
    """Return a sort key for a tuple of JSON values (None and mixed types included)."""
    return json.dumps(list(values), sort_keys=True, ensure_ascii=False, default=str)


def to_jsonl(rows: list[dict[str, Any]]) -> bytes:
    """Return rows as a JSON Lines file (one compact JSON object per line, UTF-8)."""
    return b"".join(
        json.dumps(row, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        for row in rows
    )


@dataclass
class Delivery:
    """What leaves the gateway for one exchange, whatever the delivery mode."""

    fields: list[str]
    rows: list[dict[str, Any]]  # in the reply: rows (api), aggregates (compute), none (file)
    source_rows: int  # rows of the dataset used: what the row quota meters
    content_hash: str  # SHA-256 of what was delivered (the file's bytes for a file)
    file: dict[str, Any] | None = None
    groups: int | None = None
    suppressed_groups: int | None = None


def deliver(
    rows: list[dict[str, Any]],
    *,
    delivery: str,
    fields: list[str],
    group_by: list[str] | None,
    obligations: dict[str, Any],
    limit: int | None,
    watermark: str | None,
    name: str,
) -> Delivery:
    """Apply every obligation and shape the data for `delivery` (api, file or compute)."""
    if delivery == "compute":
        caps = [c for c in (obligations.get("row_cap"), limit) if c is not None]
        used = rows[: min(caps)] if caps else rows
        columns, groups, suppressed = aggregate(
            used,
            fields=fields,
            group_by=group_by or [],
            obligations=obligations,
            watermark=watermark,
        )
        return Delivery(
            columns,
            groups,
            len(used),
            content_hash(groups),
            groups=len(groups),
            suppressed_groups=suppressed,
        )
    kept, out = apply(
        rows, fields=fields, obligations=obligations, limit=limit, watermark=watermark
    )
    if delivery == "file":
        blob = to_jsonl(out)
        digest = hashlib.sha256(blob).hexdigest()
        file = {
            "name": f"{name}.jsonl",
            "media_type": "application/jsonl",
            "sha256": digest,
            "bytes": len(blob),
            "content": blob.decode("utf-8"),
        }
        return Delivery(kept, [], len(out), digest, file=file)
    return Delivery(kept, out, len(out), content_hash(out))
