"""Transfers: a delivery as the Dataspace Protocol names it, pulled by the consumer or pushed to
its sink, with the states REQUESTED → STARTED → (SUSPENDED ⇄ STARTED) → COMPLETED | TERMINATED."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.core.types import FieldName, Identifier, Purpose
from gateway.dataplane.encoders import ARROW, CSV, JSONL, PARQUET
from gateway.exchanges.models import Receipt

FORMATS = (JSONL, CSV, ARROW, PARQUET)
Format = Literal[
    "application/jsonl",
    "text/csv",
    "application/vnd.apache.arrow.stream",
    "application/vnd.apache.parquet",
]
TransferState = Literal["REQUESTED", "STARTED", "SUSPENDED", "COMPLETED", "TERMINATED"]


class Transfer(Base):
    """One transfer process: what was decided, what is reserved, what was delivered.

    Never holds a push sink's credentials: `sink` is the address's public part only.
    """

    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(40), index=True)
    consumer_id: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[str] = mapped_column(String(40))
    product_id: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(10))
    format: Mapped[str] = mapped_column(String(60))
    purpose: Mapped[str] = mapped_column(String(100))
    fields: Mapped[list]
    limit: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(20))
    decision_id: Mapped[str] = mapped_column(String(40))
    obligations: Mapped[dict]
    watermark: Mapped[str | None] = mapped_column(String(80))
    # Rows of the contract's quota held for this transfer from its start (null: no cap to hold).
    reserved_rows: Mapped[int | None]
    # True once the reservation is settled (delivered rows metered, the rest released).
    settled: Mapped[bool] = mapped_column(default=False)
    # Rows that left the gateway in every attempt (what the contract is metered for).
    metered_rows: Mapped[int] = mapped_column(default=0)
    # The last stream's rows, bytes and SHA-256 of exactly its bytes.
    rows: Mapped[int] = mapped_column(default=0)
    bytes: Mapped[int] = mapped_column(default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # A pull's data stream has begun (a transfer delivers once).
    streaming: Mapped[bool] = mapped_column(default=False)
    # Tokens carry this generation; a resume issues a new one and retires the earlier tokens.
    token_generation: Mapped[int] = mapped_column(default=1)
    sink: Mapped[dict | None]
    location: Mapped[str | None] = mapped_column(String(400))
    reason: Mapped[str | None] = mapped_column(String(400))
    completed_seq: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TransferRequest(BaseModel):
    """What a consumer asks for: a pull or a push of data under a contract, for a purpose."""

    model_config = ConfigDict(extra="forbid")
    contract_id: Identifier
    purpose: Purpose
    type: Literal["pull", "push"] = Field(
        "pull",
        description="pull: the reply carries the data endpoint and a short-lived token; push: "
        "the gateway writes to `sink`",
    )
    format: Format = Field(JSONL, description="the media type the data is encoded in")
    fields: list[FieldName] | None = Field(
        None, max_length=200, description="fields of the resource wanted; default: all allowed"
    )
    limit: int | None = Field(None, gt=0, le=1_000_000_000, description="at most this many rows")
    sink: dict[str, Any] | None = Field(
        None,
        description="push only: an `object` (S3) or `http` sink address (specs/dataplane.md), "
        "with the credentials for this transfer only in its `secret` part; they are held in "
        "memory while the push runs and never stored, returned, logged or recorded",
    )

    @field_validator("sink")
    @classmethod
    def _sink_is_small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(repr(value)) > 8000:
            raise ValueError("sink address is too large")
        return value

    @property
    def delivery(self) -> str:
        """The delivery the policy judges: a transfer moves a file (specs/transfers.md)."""
        return "file"

    def requested(self, available: list[str]) -> list[str]:
        """Return the requested field names, defaulting to `available`."""
        return list(self.fields) if self.fields is not None else list(available)


class InlineTransferRequest(TransferRequest):
    """The pull behind an exchange streamed in its own reply (POST /exchanges with Accept naming
    a data format): judged as the exchange's delivery, api or file, not as a transfer's file."""

    judged_as: Literal["api", "file"] = "file"

    @property
    def delivery(self) -> str:
        return self.judged_as


class TransferAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=200, pattern=r"^[^\x00]*$")


class DataToken(BaseModel):
    """EDC's endpoint data reference: where to pull and the token that alone opens it."""

    endpoint: str
    token: str = Field(description="Bearer token for the data endpoint only (a JWT, EdDSA)")
    token_type: str = "Bearer"
    expires_at: str


class TransferRead(BaseModel):
    id: str
    contract_id: str
    consumer_id: str
    provider_id: str
    product_id: str
    type: str
    format: str
    purpose: str
    fields: list[str]
    masked: list[str]
    limit: int | None
    state: TransferState
    allowed_actions: list[str]
    decision_id: str
    watermark: str | None
    reserved_rows: int | None
    rows: int
    bytes: int
    sha256: str | None = Field(description="SHA-256 of exactly the bytes delivered (completed)")
    sink: dict[str, Any] | None = Field(description="push: the sink's public address")
    location: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    receipt: Receipt | None = Field(
        None, description="the ledger entry transfer.completed: the consumer's receipt"
    )
    data: DataToken | None = Field(
        None, description="pull, STARTED: the data endpoint and its token (only to the consumer)"
    )


class TransferList(BaseModel):
    items: list[TransferRead]
