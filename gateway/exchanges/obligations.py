"""Applying a decision's obligations to rows: keep, drop and mask fields, cap rows, watermark."""

import hashlib
from typing import Any

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
