"""Authorisations (授权运营协议): a holder lets an operator develop products from resources."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base


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


class AuthorisationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator_id: str
    resource_ids: list[str] = Field(min_length=1)
    not_before: datetime | None = Field(None, description="defaults to now")
    not_after: datetime
    fee_cap_fen: int = Field(ge=0, description="price cap per contract, integer fen")
    revenue_share: dict[str, int] = Field(
        default_factory=lambda: {"holder": 40, "operator": 50, "platform": 10},
        description="percentages by party; they add up to 100",
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
    status: str
    created_at: datetime
    ledger_seq: int | None = None
