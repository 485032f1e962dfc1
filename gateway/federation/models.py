"""The consumer side of DSP federation: processes this gateway runs at a peer for one of its
own participants.

A consumer registered here asks this gateway to negotiate with a peer gateway (over DSP, with a
peer token this gateway signs) and then to transfer and pull under the agreement. Each such
process is one row here, keyed by our own DSP process id (the `consumerPid` the peer sees);
the peer's id for it (`providerPid`) is kept beside it once the peer answers.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.core.types import Identifier
from gateway.peers.models import PEER_ID_MAX, PEER_ID_PATTERN

Kind = Literal["negotiation", "transfer"]


class FederatedProcess(Base):
    """A DSP process this gateway runs as consumer at a peer, for one of its participants."""

    __tablename__ = "federation_processes"

    consumer_pid: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    peer_id: Mapped[str] = mapped_column(String(PEER_ID_MAX))
    participant_id: Mapped[str] = mapped_column(String(64))
    remote_participant_id: Mapped[str] = mapped_column(String(64))
    provider_pid: Mapped[str | None] = mapped_column(String(200), default=None)
    # The DSP state as the peer last told it (REQUESTED, AGREED, FINALIZED, STARTED, ...).
    state: Mapped[str] = mapped_column(String(20))
    offer_id: Mapped[str | None] = mapped_column(String(200), default=None)
    dataset_id: Mapped[str | None] = mapped_column(String(200), default=None)
    purpose: Mapped[str | None] = mapped_column(String(200), default=None)
    # A transfer: the negotiation (our consumer_pid) whose agreement it runs under.
    negotiation_pid: Mapped[str | None] = mapped_column(String(64), default=None)
    # A negotiation: the agreement the peer sent (its contract document and signatures).
    document: Mapped[dict | None] = mapped_column(default=None)
    document_hash: Mapped[str | None] = mapped_column(String(100), default=None)
    provider_signature: Mapped[str | None] = mapped_column(String(4000), default=None)
    # A transfer: where to pull, and the bearer token the peer's TransferStartMessage gave.
    endpoint: Mapped[str | None] = mapped_column(String(2000), default=None)
    token: Mapped[str | None] = mapped_column(String(4000), default=None)
    expires_at: Mapped[str | None] = mapped_column(String(40), default=None)
    # At a "dsp" peer (no dsgw gateway): the SHA-256 (hex) of the key in the callback address
    # our request gave the peer; its callbacks are authenticated by it (never stored itself).
    callback_key_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


PeerRef = Field(max_length=PEER_ID_MAX, pattern=PEER_ID_PATTERN, description="the peer's id")


class NegotiationCreate(BaseModel):
    """What a consumer asks: negotiate this offer of the peer's catalogue, for this purpose."""

    model_config = ConfigDict(extra="forbid")
    peer: str = PeerRef
    offer_id: str = Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")
    dataset_id: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\s]+$")
    purpose: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")


class Verification(BaseModel):
    """The consumer's compact JWS over the agreement's contract document (a dsgw peer's
    agreement); none for a "dsp" peer's agreement, which carries no dsgw contract."""

    model_config = ConfigDict(extra="forbid")
    signature: str | None = Field(None, min_length=1, max_length=4000, pattern=r"^[A-Za-z0-9_.-]+$")


class CounterOffer(BaseModel):
    """The offer the consumer asks for instead of the peer's (its id in the peer's catalogue)."""

    model_config = ConfigDict(extra="forbid")
    offer_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f]+$",
        description="an offer id of the peer's (default: the offer first requested)",
    )


class Initiate(BaseModel):
    """A DSP consumer-side trigger (the DSP TCK's `negotiation.initiate.url` and
    `transfer.initiate.url`): start a federated negotiation or transfer, for the caller, with the
    registered peer whose DSP URL is `connectorAddress`."""

    model_config = ConfigDict(extra="forbid")
    connectorAddress: str = Field(max_length=2000, pattern=r"^https?://[^\s]+$")
    providerId: str | None = Field(None, max_length=500, description="the provider's id (unused)")
    offerId: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\s]+$")
    datasetId: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\s]+$")
    agreementId: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\s]+$")
    format: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^\s]+$")


class TransferCreate(BaseModel):
    """What a consumer asks: a pull under the agreement of one of its federated negotiations."""

    model_config = ConfigDict(extra="forbid")
    negotiation: Identifier = Field(description="the consumer_pid of a FINALIZED negotiation")


class Evidence(BaseModel):
    """A ledger entry of the other side: its seq and hash, and a checkpoint that covers it."""

    entry: str
    seq: int
    checkpoint: dict[str, Any]


class ProcessRead(BaseModel):
    """A federated process as its consumer sees it (never the data token)."""

    consumer_pid: str
    kind: str
    peer: str
    participant_id: str
    remote_participant_id: str
    provider_pid: str | None
    state: str
    offer_id: str | None
    dataset_id: str | None
    purpose: str | None
    negotiation_pid: str | None
    document: dict | None = Field(description="the agreement's contract document, to sign")
    document_hash: str | None
    endpoint: str | None
    ledger_seq: int | None = None


class FederatedCatalogue(BaseModel):
    """A peer's DSP catalogue, as this gateway fetched it for the caller."""

    peer: str
    participant_id: str = Field(description="whom the peer saw asking: the caller's id there")
    catalog: dict[str, Any]
    ledger_seq: int
