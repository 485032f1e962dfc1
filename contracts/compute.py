"""Compute terms: what a consumer may ask of a dataset it never sees (specs/compute.md).

An offer that serves `compute` delivery declares, per column, a disclosure rule in the manner of
SecretFlow SCQL's column control lists, and for each column what may be asked of it: clamp
bounds for sums and means, bins for histograms and quantiles, the value set a group key or an
equality filter may take, the ranges a range filter may name. Anything not declared is refused
before it runs.
"""

import itertools
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

ColumnRule = Literal["plaintext", "group_key", "aggregate", "never"]
AggregateOp = Literal["count", "sum", "mean", "quantile", "histogram"]
AGGREGATE_OPS: tuple[str, ...] = ("count", "sum", "mean", "quantile", "histogram")
# Ops that read a column's values (count reads none).
VALUE_OPS = frozenset({"sum", "mean", "quantile", "histogram"})
# Rules under which a column may be read inside an aggregate, and grouped or filtered on.
AGGREGATABLE = frozenset({"plaintext", "aggregate"})
GROUPABLE = frozenset({"plaintext", "group_key"})

ColumnName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]
KeyValue = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Finite = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]


class ComputeColumn(BaseModel):
    """One column's disclosure rule and what may be asked of it."""

    model_config = ConfigDict(extra="forbid")

    rule: ColumnRule = Field(
        description="plaintext: grouped, filtered or aggregated; group_key: grouped or filtered "
        "on its declared values only; aggregate: read only inside an aggregate; never: not used"
    )
    lower: Finite | None = Field(None, description="clamp bound for sum and mean (inclusive)")
    upper: Finite | None = Field(None, description="clamp bound for sum and mean (inclusive)")
    bins: list[Finite] | None = Field(
        None,
        min_length=2,
        max_length=101,
        description="histogram and quantile bin edges, strictly increasing; values outside "
        "are clamped into the first or last bin",
    )
    values: list[KeyValue] | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="the values a group key or an equality filter may take (text form); "
        "rows with other values fall in no group",
    )
    ranges: list[tuple[Finite, Finite]] | None = Field(
        None, min_length=1, max_length=100, description="[lower, upper) a range filter may name"
    )

    @model_validator(mode="after")
    def _consistent(self) -> "ComputeColumn":
        if (self.lower is None) != (self.upper is None):
            raise ValueError("expected both lower and upper clamp bounds, or neither")
        if self.lower is not None and not self.lower < self.upper:
            raise ValueError(f"expected lower < upper, found {self.lower} and {self.upper}")
        if self.bins is not None and any(a >= b for a, b in itertools.pairwise(self.bins)):
            raise ValueError(f"expected strictly increasing bins, found {self.bins}")
        if self.values is not None and len(set(self.values)) != len(self.values):
            raise ValueError("expected each declared value once")
        if self.ranges is not None and any(not lo < hi for lo, hi in self.ranges):
            raise ValueError("expected each range as [lower, upper) with lower < upper")
        return self


class ComputeTerms(BaseModel):
    """An offer's compute terms: the only questions its compute delivery answers."""

    model_config = ConfigDict(extra="forbid")

    subject: ColumnName | None = Field(
        None,
        description="the column naming the person or entity a row is about: minimum group "
        "size counts distinct subjects, and the privacy unit is a subject; null: each row is "
        "its own subject",
    )
    max_rows_per_subject: StrictInt = Field(
        1,
        ge=1,
        le=100,
        description="contribution bound: rows kept per subject (the rest never enter a result)",
    )
    aggregates: list[AggregateOp] = Field(min_length=1, description="the aggregates offered")
    columns: dict[ColumnName, ComputeColumn] = Field(
        description="per column its rule; a column not listed is `never`", max_length=200
    )
    max_group_keys: StrictInt = Field(2, ge=0, le=4, description="group keys per query, at most")
    max_filters: StrictInt = Field(2, ge=0, le=4, description="filters per query, at most")

    @model_validator(mode="after")
    def _unique_ops(self) -> "ComputeTerms":
        if len(set(self.aggregates)) != len(self.aggregates):
            raise ValueError("expected each aggregate once")
        return self
