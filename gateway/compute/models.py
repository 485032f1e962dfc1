"""Compute: the questions a consumer asks (aggregates, filters), the answer's privacy account,
and the privacy budget kept per contract and per consumer × resource."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from contracts.compute import AggregateOp, ColumnName, Finite
from gateway.core.db import Base

# ε is kept in millionths so that sums of spends are exact integers (no float drift).
MICRO = 1_000_000


class PrivacyBudget(Base):
    """ε spent so far under one scope: a contract, or a consumer × resource pair."""

    __tablename__ = "privacy_budgets"

    scope: Mapped[str] = mapped_column(String(20), primary_key=True)  # contract | subject_resource
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    spent_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    releases: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]


class Aggregate(BaseModel):
    """One aggregate asked for: count (no field), or sum, mean, quantile, histogram of a field."""

    model_config = ConfigDict(extra="forbid")
    op: AggregateOp
    field: ColumnName | None = None
    quantiles: list[Annotated[float, Field(gt=0, lt=1)]] | None = Field(
        None, min_length=1, max_length=9, description="quantile only: e.g. [0.25, 0.5, 0.75]"
    )

    @model_validator(mode="after")
    def _field_as_the_op_needs(self) -> "Aggregate":
        if self.op == "count" and self.field is not None:
            raise ValueError("count counts subjects and takes no field")
        if self.op != "count" and self.field is None:
            raise ValueError(f"{self.op} needs a field")
        if (self.op == "quantile") != (self.quantiles is not None):
            raise ValueError("quantiles go with op quantile, and op quantile needs them")
        return self


class Filter(BaseModel):
    """A declared filter: a field equal to one declared value, or within one declared range."""

    model_config = ConfigDict(extra="forbid")
    field: ColumnName
    eq: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    range: tuple[Finite, Finite] | None = Field(None, description="[lower, upper), declared")

    @model_validator(mode="after")
    def _one_condition(self) -> "Filter":
        if (self.eq is None) == (self.range is None):
            raise ValueError("a filter has exactly one of eq and range")
        return self


class NoiseRead(BaseModel):
    """The noise one measure carries: Laplace scale and the 95 % error bound it implies."""

    measure: str
    mechanism: Literal["laplace", "discrete_laplace"]
    sensitivity: float
    epsilon: float
    scale: float
    error_95: float = Field(description="|noise| stays below this with probability 0.95")


class PrivacyRead(BaseModel):
    """What this release cost and what is left (ε-differential privacy, δ = 0)."""

    epsilon_spent: float
    epsilon_per_query: float
    contract: dict[str, float] = Field(description="{spent, budget, remaining} under the contract")
    subject_resource: dict[str, float] = Field(
        description="{spent, budget, remaining} for this consumer on this resource, all contracts"
    )
    min_group_size: int
    noise: list[NoiseRead]


class BudgetRead(BaseModel):
    """The privacy budget a compute query under a contract would spend from, read before it is
    asked: the strictest query the terms declare (every readable column) judged by the policy."""

    contract_id: str
    consumer_id: str
    resource_id: str
    epsilon_per_query: float = Field(description="ε one query of the strictest tier spends")
    contract: dict[str, float] = Field(description="{spent, budget, remaining} under the contract")
    subject_resource: dict[str, float] = Field(
        description="{spent, budget, remaining} for the consumer on this resource, all contracts"
    )
    queries_left: int = Field(description="queries of ε per query that both budgets still allow")
    fields: list[str] = Field(
        description="the columns the strictest declared query reads: the ones the policy judged"
    )
