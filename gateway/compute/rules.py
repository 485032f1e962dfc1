"""Compute rules: default terms for a resource, the policy's view of a query, and the plan a
validated query becomes (the only shape the engine runs).

The policy decides whether a query fits the offer's terms (COMPUTE_NOT_DECLARED,
COLUMN_RULE_VIOLATED); `plan` checks the same again and refuses, so that a policy that allowed
too much still cannot make the engine run an undeclared question (fail closed).
"""

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from contracts.compute import AGGREGATABLE, AGGREGATE_OPS, GROUPABLE, ComputeColumn, ComputeTerms
from gateway.resources.models import protected_fields

MAX_GROUPS = 10_000  # declared key combinations one query may span
DEFAULT_BINS = 10


class NotDeclared(Exception):
    """The query asks what the offer's compute terms do not declare."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def rounded_bound(value: float) -> float:
    """Return the power of ten at or above |value| (at least 1): a coarse, public clamp bound."""
    magnitude = abs(value)
    return 1.0 if magnitude <= 1 else float(10 ** math.ceil(math.log10(magnitude)))


def default_terms(
    fields: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    *,
    personal_information: bool = False,
    sensitive_personal_information: bool = False,
    min_group_size: int = 10,
) -> ComputeTerms:
    """Return the compute terms a product gets when its offer declares none (specs/compute.md).

    Numeric columns are `aggregate`, clamped to the power of ten above their largest magnitude,
    with ten equal bins; a text column not holding personal information is a `group_key` over
    the values that at least `min_group_size` rows hold (rarer values are not declared, so they
    form no group); every other column is `never`. Each row is its own subject.
    """
    guarded = protected_fields(
        fields,
        personal_information=personal_information,
        sensitive_personal_information=sensitive_personal_information,
    )
    columns: dict[str, ComputeColumn] = {}
    for spec in fields:
        name = spec["name"]
        protected = name in guarded
        values = [row.get(name) for row in rows if row.get(name) is not None]
        if values and all(_is_number(v) for v in values):
            low, high = min(values), max(values)
            bound = rounded_bound(max(abs(low), abs(high)))
            lower, upper = (-bound if low < 0 else 0.0), (bound if high > 0 else 0.0)
            if lower == upper:
                upper = lower + 1.0
            step = (upper - lower) / DEFAULT_BINS
            bins = [lower + step * i for i in range(DEFAULT_BINS)] + [upper]
            columns[name] = ComputeColumn(rule="aggregate", lower=lower, upper=upper, bins=bins)
            continue
        counts: dict[str, int] = {}
        for value in values:
            counts[str(value)] = counts.get(str(value), 0) + 1
        common = sorted(v for v, n in counts.items() if n >= min_group_size and len(v) <= 200)
        if protected or not common:
            columns[name] = ComputeColumn(rule="never")
        else:
            columns[name] = ComputeColumn(rule="group_key", values=common[:1000])
    numeric = any(c.rule == "aggregate" for c in columns.values())
    return ComputeTerms(aggregates=list(AGGREGATE_OPS) if numeric else ["count"], columns=columns)


def readable_columns(terms: ComputeTerms) -> list[str]:
    """Return every column a declared query may read (grouped on, filtered on or aggregated):
    all but `never`, in the terms' order. A query reading all of them is the strictest."""
    return [name for name, column in terms.columns.items() if column.rule != "never"]


def query_document(request: Any) -> dict[str, Any]:
    """Return the query as the policy sees it: aggregates, group keys, filters."""
    return {
        "aggregates": [{"op": a.op, "field": a.field} for a in request.aggregates or []],
        "group_by": list(request.group_by or []),
        "filters": [
            {"field": f.field, "eq": f.eq, "range": list(f.range) if f.range else None}
            for f in request.filters or []
        ],
    }


def touched_fields(request: Any) -> list[str]:
    """Return every column a compute query reads, in first-use order (what the policy judges)."""
    names = [*(request.group_by or []), *(f.field for f in request.filters or [])]
    names += [a.field for a in request.aggregates or [] if a.field is not None]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Measure:
    """One vector the engine computes exactly and the release adds noise to."""

    name: str  # subjects | rows | sum:<field> | hist:<field>
    integer: bool
    sensitivity: float  # L1, over the whole vector, for one subject added or removed


@dataclass
class Plan:
    """A validated query: what the engine computes, and what each measure's sensitivity is."""

    subject: str | None
    max_rows: int
    keys: list[tuple[str, list[str]]]
    filters: list[tuple[str, str, Any]]  # (field, "eq" | "range", value)
    sums: dict[str, tuple[float, float]] = field(default_factory=dict)
    hists: dict[str, list[float]] = field(default_factory=dict)
    need_rows: bool = False
    aggregates: list[Any] = field(default_factory=list)

    def measures(self) -> list[Measure]:
        """Return the measures to release, each with its L1 sensitivity."""
        k = float(self.max_rows)
        out = [Measure("subjects", True, k)]
        if self.need_rows:
            out.append(Measure("rows", True, k))
        out += [
            Measure(f"sum:{name}", False, k * max(abs(lo), abs(hi)))
            for name, (lo, hi) in self.sums.items()
        ]
        out += [Measure(f"hist:{name}", True, k) for name in self.hists]
        return out

    def groups(self) -> list[tuple[str, ...]]:
        """Return every declared key combination: each gets a noisy answer, present or not."""
        return list(itertools.product(*(values for _, values in self.keys)))


def _column(terms: ComputeTerms, name: str) -> ComputeColumn:
    return terms.columns.get(name) or ComputeColumn(rule="never")


def plan(terms: ComputeTerms | None, request: Any) -> Plan:
    """Return the plan of a query within `terms`; raise NotDeclared for anything outside them."""
    if terms is None:
        raise NotDeclared("the offer declares no compute terms")
    group_by = list(request.group_by or [])
    filters = list(request.filters or [])
    if len(group_by) > terms.max_group_keys or len(filters) > terms.max_filters:
        raise NotDeclared("more group keys or filters than the terms allow")
    if len(set(group_by)) != len(group_by):
        raise NotDeclared("a group key named twice")
    keys = []
    for name in group_by:
        column = _column(terms, name)
        if column.rule not in GROUPABLE or not column.values:
            raise NotDeclared(f"{name} is not a declared group key")
        keys.append((name, list(column.values)))
    if math.prod(len(v) for _, v in keys) > MAX_GROUPS:
        raise NotDeclared(f"the grouping spans more than {MAX_GROUPS} groups")
    conditions = []
    for f in filters:
        column = _column(terms, f.field)
        if column.rule not in GROUPABLE:
            raise NotDeclared(f"{f.field} may not be filtered on")
        if f.eq is not None:
            if f.eq not in (column.values or []):
                raise NotDeclared(f"{f.field} = {f.eq!r} is not a declared filter")
            conditions.append((f.field, "eq", f.eq))
        else:
            declared = [tuple(r) for r in column.ranges or []]
            if tuple(f.range) not in declared:
                raise NotDeclared(f"{f.field} in {list(f.range)} is not a declared range")
            conditions.append((f.field, "range", tuple(f.range)))
    result = Plan(
        subject=terms.subject,
        max_rows=terms.max_rows_per_subject,
        keys=keys,
        filters=conditions,
        aggregates=list(request.aggregates or []),
    )
    if not result.aggregates:
        raise NotDeclared("a compute query names at least one aggregate")
    for aggregate in result.aggregates:
        if aggregate.op not in terms.aggregates:
            raise NotDeclared(f"aggregate {aggregate.op} is not offered")
        if aggregate.op == "count":
            continue
        column = _column(terms, aggregate.field)
        if column.rule not in AGGREGATABLE:
            raise NotDeclared(f"{aggregate.field} may not be aggregated")
        if aggregate.op in ("sum", "mean"):
            if column.lower is None:
                raise NotDeclared(f"{aggregate.field} has no declared clamp bounds")
            result.sums[aggregate.field] = (column.lower, column.upper)
            result.need_rows |= aggregate.op == "mean" and terms.max_rows_per_subject > 1
        else:
            if column.bins is None:
                raise NotDeclared(f"{aggregate.field} has no declared bins")
            result.hists[aggregate.field] = list(column.bins)
    return result
