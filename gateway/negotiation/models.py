"""Usage contracts (数字合约) between a provider and a consumer, negotiated on an offer."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.core.types import Identifier, Purpose


class Contract(Base):
    __tablename__ = "contracts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    provider_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    consumer_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    purpose: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    document: Mapped[dict]
    document_hash: Mapped[str] = mapped_column(String(64))
    provider_signature: Mapped[str | None]
    consumer_signature: Mapped[str | None]
    gateway_signature: Mapped[str | None]
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    # The resource's holder, and whether its approval is needed before AGREED (important data).
    holder_id: Mapped[str | None] = mapped_column(String(40), default=None)
    approval_required: Mapped[bool] = mapped_column(default=False)
    holder_approved_at: Mapped[datetime | None] = mapped_column(default=None)
    rows_used: Mapped[int] = mapped_column(default=0)
    calls_used: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContractRequest(BaseModel):
    """A consumer's request for an offer, for one of the offer's purposes."""

    model_config = ConfigDict(extra="forbid")
    offer_id: Identifier
    purpose: Purpose


class ContractSignature(BaseModel):
    """A party's compact JWS (EdDSA) over the canonical contract document."""

    model_config = ConfigDict(extra="forbid")
    signature: str = Field(min_length=1, max_length=20_000)


class ContractAction(BaseModel):
    """Why a contract is suspended, reinstated, revoked, terminated, approved or refused."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000, pattern=r"^[^\x00]*$")


class ContractRead(BaseModel):
    id: str
    offer_id: str
    product_id: str
    provider_id: str
    consumer_id: str
    purpose: str
    state: str
    allowed_next_states: list[str]
    document: dict
    document_hash: str
    signatures: dict[str, str | None]
    not_before: datetime
    not_after: datetime
    holder_approval: dict = Field(
        description="{required, holder, approved_at}: important data needs the holder's approval "
        "before AGREED"
    )
    termination: str = Field(description="who may terminate once FINALIZED (the offer's term)")
    usage: dict[str, int] = Field(description="{rows, calls} used so far under the contract")
    quota: dict[str, int | None] = Field(
        default_factory=dict,
        description="{rows, calls}: the offer's quotas (null: no cap), beside `usage`",
    )
    created_at: datetime
    updated_at: datetime
    ledger_seq: int | None = None
