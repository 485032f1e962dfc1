"""The Dataspace Protocol (DSP 2025-1) side of our objects: what a peer's process ids are.

A DSP contract negotiation is one of our contracts (its `providerPid` is the contract's id); a
DSP transfer process is one of our transfers. What DSP adds and our objects do not hold is the
peer's own process id (`consumerPid`) and the address it takes callbacks on: kept here, one row
per negotiation and per transfer.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.core.types import ID_MAX, ID_PATTERN

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
DSPACE_NS = "https://w3id.org/dspace/2025/1/"
VERSION = "2025-1"
# Where the bindings live under the gateway's base URL (named in /.well-known/dspace-version).
PATH = "/dsp/2025-1"
# Our own terms on DCAT datasets, as absolute IRIs (the DSP context is protected: no prefixes).
DSGW_TERMS = "https://dsgw.dev/ns/dcat#"


class DspNegotiation(Base):
    """A contract negotiation a DSP consumer opened: its process id and callback address."""

    __tablename__ = "dsp_negotiations"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    consumer_pid: Mapped[str] = mapped_column(String(200))
    callback_address: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_at: Mapped[datetime]


def message(type_: str, **members: Any) -> dict[str, Any]:
    """Return a DSP JSON-LD message of `type_` (compacted with the DSP 2025-1 context)."""
    return {"@context": [DSP_CONTEXT], "@type": type_, **members}


class DspTransfer(Base):
    """A transfer process a DSP consumer opened: its process id and callback address."""

    __tablename__ = "dsp_transfers"

    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), primary_key=True)
    consumer_pid: Mapped[str] = mapped_column(String(200))
    callback_address: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_at: Mapped[datetime]


class DspNegotiationRead(BaseModel):
    """A negotiation a DSP consumer opened on one of the merchant's offers."""

    provider_pid: str = Field(description="the contract id")
    consumer_pid: str
    state: str = Field(description="our contract state")
    offer_id: str
    product_id: str
    consumer_id: str
    purpose: str
    document: dict = Field(description="the contract document the merchant signs to agree")
    callback_address: str | None


class DspTransferRead(BaseModel):
    """A transfer a DSP consumer opened on one of the merchant's products."""

    provider_pid: str = Field(description="the transfer id")
    consumer_pid: str
    state: str
    contract_id: str
    product_id: str
    consumer_id: str
    callback_address: str | None


class DspNegotiationList(BaseModel):
    items: list[DspNegotiationRead]


class DspTransferList(BaseModel):
    items: list[DspTransferRead]


class ProviderOffer(BaseModel):
    """The merchant's offer on a DSP negotiation: one of the product's own offers."""

    model_config = ConfigDict(extra="forbid")
    offer_id: str | None = Field(
        None,
        max_length=ID_MAX,
        pattern=ID_PATTERN,
        description="an offer of the negotiation's product (default: the one it stands on)",
    )
