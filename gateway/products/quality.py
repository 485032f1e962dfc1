"""The quality report of a product on the GB/T 36344-2018 dimensions.

Completeness (完整性), consistency (一致性) and conformity (规范性) are computed from the resource's
dataset and data dictionary; accuracy (准确性), timeliness (时效性) and accessibility (可访问性)
need knowledge the gateway lacks, so the merchant states them (or they stay `not-stated`).
"""

from collections import Counter
from typing import Any

from gateway.products.models import QUALITY_DIMENSIONS, StatedQuality

STANDARD = "GB/T 36344-2018"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _dimension(key: str, score: float | None, method: str, basis: str) -> dict[str, Any]:
    return {
        "dimension": key,
        "name": QUALITY_DIMENSIONS[key],
        "score": None if score is None else round(score, 4),
        "method": method,
        "basis": basis,
    }


def computed(fields: list[dict], rows: list[dict]) -> list[dict[str, Any]]:
    """Return the dimensions computed from the data dictionary and rows."""
    names = [f["name"] for f in fields]
    cells = len(rows) * len(names)
    values = {name: [row.get(name) for row in rows] for name in names}
    present = sum(1 for name in names for v in values[name] if v is not None)
    if cells:
        completeness = _dimension(
            "completeness",
            present / cells,
            "computed",
            f"share of non-null values: {present} of {len(rows)} rows × {len(names)} fields",
        )
    else:
        completeness = _dimension("completeness", None, "computed", "the resource has no rows")
    agreeing = 0
    for name in names:
        kinds = Counter(_kind(v) for v in values[name] if v is not None)
        agreeing += kinds.most_common(1)[0][1] if kinds else 0
    consistency = _dimension(
        "consistency",
        agreeing / present if present else None,
        "computed",
        f"share of non-null values whose type is their field's prevailing type: "
        f"{agreeing} of {present}",
    )
    described = sum(1 for f in fields if (f.get("description") or "").strip())
    conformity = _dimension(
        "conformity",
        described / len(fields) if fields else None,
        "computed",
        f"share of declared fields the data dictionary describes: {described} of {len(fields)}",
    )
    return [conformity, completeness, consistency]


def report(fields: list[dict], rows: list[dict], stated: StatedQuality) -> dict[str, Any]:
    """Return the product's quality report: every dimension, computed or stated."""
    dimensions = {d["dimension"]: d for d in computed(fields, rows)}
    for key in ("accuracy", "timeliness", "accessibility"):
        score = getattr(stated, key)
        dimensions[key] = (
            _dimension(key, score.score, "stated", score.basis or "stated by the merchant")
            if score is not None
            else _dimension(key, None, "not-stated", "the merchant stated no score")
        )
    return {
        "standard": STANDARD,
        "dimensions": [dimensions[key] for key in QUALITY_DIMENSIONS],
    }
