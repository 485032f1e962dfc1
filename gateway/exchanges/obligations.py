"""Applying a decision's obligations to rows: keep, drop and mask fields, cap rows, watermark."""

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.core.hashing import content_hash
from gateway.dataplane.masks import KINDS, mask_value

KNOWN = frozenset({"mask", "drop", "row_cap", "min_group_size", "watermark", "dp"})


class UnsupportedObligation(Exception):
    """The decision carries an obligation this gateway cannot honour: the exchange is refused."""


# The masking shapes, row by row, live with the data plane (gateway/dataplane/masks.py).


_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_ID_CARD = {"idcard", "sfz", "sfzh", "shenfenzheng", "identity", "idno", "idnumber"}
_ID_PAIRS = {("id", "card"), ("id", "no"), ("id", "number"), ("id", "num"), ("citizen", "id")}
_PHONE = {"phone", "mobile", "tel", "telephone", "cellphone", "shouji", "dianhua", "msisdn"}
_EMAIL = {"email", "mail"}
_NAME = {"name", "fullname", "surname", "xingming"}


def infer_kind(name: str) -> str:
    """Return the kind a field's name suggests (words split on _ and camelCase), else text."""
    words = [w.lower() for w in _WORDS.findall(name)]
    pairs = set(zip(words, words[1:], strict=False))
    if _ID_CARD & set(words) or _ID_PAIRS & pairs:
        return "id_card"
    if _PHONE & set(words):
        return "phone"
    if _EMAIL & set(words):
        return "email"
    if _NAME & set(words):
        return "name"
    return "text"


def field_kind(field: dict[str, Any]) -> str:
    """Return what a resource field holds: its declared kind, else the one its name suggests."""
    declared = field.get("kind")
    return declared if declared in KINDS else infer_kind(field["name"])


def check_known(obligations: dict[str, Any], *, delivery: str) -> None:
    """Raise UnsupportedObligation when an obligation is unknown or cannot apply to `delivery`."""
    unknown = sorted(set(obligations) - KNOWN)
    if unknown:
        raise UnsupportedObligation(f"unknown obligations {unknown}")
    if obligations.get("min_group_size") is not None and delivery != "compute":
        raise UnsupportedObligation(
            "min_group_size applies to aggregates only, and this is a row delivery"
        )
    if obligations.get("dp") is not None and delivery != "compute":
        raise UnsupportedObligation("dp applies to aggregates only, and this is a row delivery")
    if delivery == "compute":
        dp = obligations.get("dp")
        keys = {"epsilon_per_query", "budget_contract", "budget_subject_resource"}
        if not isinstance(dp, dict) or set(dp) != keys:
            raise UnsupportedObligation(
                f"compute needs the policy's dp obligation with {sorted(keys)}, found {dp!r}"
            )
        if not all(isinstance(dp[k], int | float) and dp[k] > 0 for k in keys):
            raise UnsupportedObligation(f"dp values must be positive numbers, found {dp!r}")
        if not isinstance(obligations.get("min_group_size"), int):
            raise UnsupportedObligation("compute needs the policy's min_group_size")


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
    kinds: dict[str, str] | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Return the delivered field names and rows after every obligation.

    A masked field keeps the shape of its kind (`kinds`: field name -> kind; a field not in it
    takes the kind its name suggests).
    """
    drop = set(obligations.get("drop") or [])
    mask = set(obligations.get("mask") or [])
    kept = [name for name in fields if name not in drop]
    cap = obligations.get("row_cap")
    caps = [c for c in (cap, limit) if c is not None]
    selected = rows[: min(caps)] if caps else rows
    shape = {name: (kinds or {}).get(name) or infer_kind(name) for name in mask}
    delivered = []
    for row in selected:
        out = {
            name: (mask_value(row.get(name), shape[name]) if name in mask else row.get(name))
            for name in kept
        }
        if watermark is not None:
            out["_watermark"] = watermark
        delivered.append(out)
    return kept, delivered


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


def deliver(
    rows: list[dict[str, Any]],
    *,
    delivery: str,
    fields: list[str],
    obligations: dict[str, Any],
    limit: int | None,
    watermark: str | None,
    name: str,
    kinds: dict[str, str] | None = None,
) -> Delivery:
    """Apply every obligation and shape the rows for `delivery` (api or file).

    Compute is not delivered here: gateway/compute releases its noisy aggregates.
    """
    if delivery not in ("api", "file"):
        raise UnsupportedObligation(f"rows are delivered by api or file, not {delivery}")
    kept, out = apply(
        rows, fields=fields, obligations=obligations, limit=limit, watermark=watermark, kinds=kinds
    )
    return package(out, delivery=delivery, fields=kept, name=name)


def package(rows: list[dict[str, Any]], *, delivery: str, fields: list[str], name: str) -> Delivery:
    """Return rows already under their obligations as an api reply or a JSON Lines file."""
    if delivery == "file":
        blob = to_jsonl(rows)
        digest = hashlib.sha256(blob).hexdigest()
        file = {
            "name": f"{name}.jsonl",
            "media_type": "application/jsonl",
            "sha256": digest,
            "bytes": len(blob),
            "content": blob.decode("utf-8"),
        }
        return Delivery(fields, [], len(rows), digest, file=file)
    if delivery != "api":
        raise UnsupportedObligation(f"rows are delivered by api or file, not {delivery}")
    return Delivery(fields, rows, len(rows), content_hash(rows))
