"""Authorisations (授权运营协议): a holder lets an operator develop products from resources."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.core.types import TEXT_PATTERN, Fen, Identifier, Moment, ShortText

ProductKind = Literal["api", "file", "compute"]
RevenueParty = Literal["holder", "operator", "platform"]
Percent = Annotated[int, Field(ge=0, le=100)]


class Authorisation(Base):
    __tablename__ = "authorisations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    operator_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    resource_ids: Mapped[list]
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    fee_cap_fen: Mapped[int]
    revenue_share: Mapped[dict]
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    product_kinds: Mapped[list] = mapped_column(default=lambda: ["api", "compute", "file"])
    security_obligations: Mapped[list] = mapped_column(default=list)
    exit_terms: Mapped[str] = mapped_column(default="")
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    end_reason: Mapped[str | None] = mapped_column(default=None)


class AuthorisationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator_id: Identifier
    resource_ids: list[Identifier] = Field(min_length=1, max_length=200)
    not_before: Moment | None = Field(None, description="defaults to now")
    not_after: Moment
    fee_cap_fen: Fen = Field(description="price cap per contract, integer fen")
    revenue_share: dict[RevenueParty, Percent] = Field(
        default_factory=lambda: {"holder": 40, "operator": 50, "platform": 10},
        description="percentages by party; they add up to 100",
    )
    product_kinds: list[ProductKind] = Field(
        default_factory=lambda: ["api", "compute", "file"],
        min_length=1,
        description="the kinds (delivery modes) of product the operator may build",
    )
    security_obligations: list[ShortText] = Field(
        default_factory=list,
        max_length=50,
        description="security duties the operator accepts (e.g. 'data stays in the gateway')",
    )
    exit_terms: str = Field(
        "", max_length=2000, pattern=TEXT_PATTERN, description="what happens when it ends (退出)"
    )

    @model_validator(mode="after")
    def _valid(self) -> "AuthorisationCreate":
        for moment in (self.not_before, self.not_after):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("times must carry a UTC offset (RFC 3339)")
        if self.not_before and self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        if sum(self.revenue_share.values()) != 100 or any(
            v < 0 for v in self.revenue_share.values()
        ):
            raise ValueError("revenue_share percentages must be non-negative and add up to 100")
        return self


class AuthorisationRead(BaseModel):
    id: str
    holder_id: str
    operator_id: str
    resource_ids: list[str]
    not_before: datetime
    not_after: datetime
    fee_cap_fen: int
    revenue_share: dict[str, int]
    product_kinds: list[str]
    security_obligations: list[str]
    exit_terms: str
    status: str
    allowed_actions: list[str]
    ended_at: datetime | None
    end_reason: str | None
    created_at: datetime
    ledger_seq: int | None = None


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, pattern=TEXT_PATTERN)


class SweepResult(BaseModel):
    expired: list[str] = Field(description="authorisations found past their term and ended now")
    suspended_products: list[str]
