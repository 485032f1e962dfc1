"""Compute delivery: plan the query within the offer's terms, run it in the sandbox, add
calibrated noise, and release only the declared groups whose noisy subject count clears the
minimum group size (specs/compute.md).

The release reveals nothing about groups it withholds (not even how many): every declared group
gets a noisy answer, and whether it clears the threshold is itself decided on noise.
"""

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from contracts.compute import ComputeTerms
from gateway.compute import engine, privacy, rules
from gateway.core.hashing import content_hash

ROUND = 6  # decimals kept in released values (post-processing: costs no ε)


@dataclass
class Release:
    """What compute delivers: the released groups and the account of the noise they carry."""

    columns: list[str]
    rows: list[dict[str, Any]]
    content_hash: str
    epsilon: float
    min_group_size: int
    noise: list[dict[str, Any]] = field(default_factory=list)


def columns_needed(plan: rules.Plan) -> list[str]:
    """Return the dataset columns the plan reads (and only those enter the sandbox)."""
    names = [name for name, _ in plan.keys] + [name for name, _, _ in plan.filters]
    names += [*plan.sums, *plan.hists]
    if plan.subject:
        names.append(plan.subject)
    return list(dict.fromkeys(names))


def _quantile(counts: list[float], edges: list[float], q: float) -> float:
    """Return the q-quantile read off a (noisy) histogram, interpolating within its bin."""
    clipped = [max(0.0, c) for c in counts]
    total = sum(clipped)
    if total <= 0:
        return (edges[0] + edges[-1]) / 2
    target, running = q * total, 0.0
    for j, c in enumerate(clipped):
        if running + c >= target and c > 0:
            return edges[j] + (target - running) / c * (edges[j + 1] - edges[j])
        running += c
    return edges[-1]


def _label(name: str, q: float) -> str:
    return f"{name}_p{round(q * 100, 3):g}"


def release(
    table: pa.Table | list[dict[str, Any]],
    *,
    terms: ComputeTerms | None,
    request: Any,
    epsilon: float,
    min_group_size: int,
    mask: set[str],
    mask_value: Any,
    watermark: str | None,
) -> Release:
    """Return the noisy release of `request` over `table` (Arrow, or JSON rows).

    A group key on a masked field is released as `mask_value(field, value)`: its masked shape.
    """
    plan = rules.plan(terms, request)
    if not isinstance(table, pa.Table):
        keys = {name for name, _ in plan.keys} | {n for n, kind, _ in plan.filters if kind == "eq"}
        table = engine.table_from_rows(table, columns_needed(plan), text=frozenset(keys))
    exact = engine.run(table, plan)
    groups = plan.groups()
    measures = plan.measures()
    share = epsilon / len(measures)
    noised: dict[str, privacy.Noised] = {}
    for measure in measures:
        kind, _, name = measure.name.partition(":")
        if kind == "hist":
            bins = len(plan.hists[name]) - 1
            vector = []
            for key in groups:
                counts = (exact.groups.get(key) or {}).get(measure.name) or {}
                vector += [float(counts.get(j, 0)) for j in range(bins)]
        else:
            vector = [float((exact.groups.get(key) or {}).get(measure.name) or 0) for key in groups]
        noised[measure.name] = privacy.release(measure, vector, share)
    names = [name for name, _ in plan.keys]
    out_columns = list(names)
    wanted: list[tuple[str, Any]] = []
    for aggregate in plan.aggregates:
        if aggregate.op == "count":
            wanted.append(("_count", aggregate))
        elif aggregate.op == "quantile":
            wanted += [(_label(aggregate.field, q), aggregate) for q in aggregate.quantiles]
        else:
            wanted.append((f"{aggregate.field}_{aggregate.op}", aggregate))
    wanted = list(dict(wanted).items())
    out_columns += [label for label, _ in wanted]
    released = []
    for index, key in enumerate(groups):
        subjects = noised["subjects"].values[index]
        if subjects < min_group_size:
            continue
        record: dict[str, Any] = {
            name: (mask_value(name, value) if name in mask else value)
            for name, value in zip(names, key, strict=True)
        }
        rows_count = noised["rows"].values[index] if "rows" in noised else subjects
        for label, aggregate in wanted:
            if aggregate.op == "count":
                record[label] = int(round(subjects))
                continue
            if aggregate.op in ("sum", "mean"):
                lo, hi = plan.sums[aggregate.field]
                total = noised[f"sum:{aggregate.field}"].values[index]
                if aggregate.op == "sum":
                    record[label] = round(total, ROUND)
                else:
                    mean = total / max(rows_count, 1.0)
                    record[label] = round(min(max(mean, lo), hi), ROUND)
                continue
            edges = plan.hists[aggregate.field]
            bins = len(edges) - 1
            counts = noised[f"hist:{aggregate.field}"].values[index * bins : (index + 1) * bins]
            if aggregate.op == "histogram":
                record[label] = {
                    "edges": edges,
                    "counts": [max(0, int(round(c))) for c in counts],
                }
            else:
                q = _quantile_of(label, aggregate)
                record[label] = round(_quantile(counts, edges, q), ROUND)
        if watermark is not None:
            record["_watermark"] = watermark
        released.append(record)
    noise = [
        {
            "measure": n.measure.name,
            "mechanism": n.mechanism,
            "sensitivity": n.measure.sensitivity,
            "epsilon": n.epsilon,
            "scale": n.scale,
            "error_95": n.error_95,
        }
        for n in noised.values()
    ]
    return Release(
        out_columns,
        released,
        content_hash(released),
        epsilon,
        min_group_size,
        noise,
    )


def _quantile_of(label: str, aggregate: Any) -> float:
    for q in aggregate.quantiles:
        if _label(aggregate.field, q) == label:
            return q
    raise rules.NotDeclared(f"no quantile for {label}")  # pragma: no cover - labels are ours
