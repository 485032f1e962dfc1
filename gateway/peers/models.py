"""Peer gateways: other dsgw (or DSP) gateways this one trusts, and the peer tokens they used.

A peer is registered by the platform admin with its id (its issuer URL, its DSP participantId),
its DSP base URL, its Ed25519 public keys, and the participants of this gateway whose home it
is (onboarded here under the same rules as any participant). A DSP request from a peer carries
a short-lived token the peer signed (in the manner of DCP's self-issued ID token); its `jti` is
kept until it expires so that it cannot be replayed.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.core.types import Identifier
from gateway.participants.models import JWKS

PeerStatus = Literal["active", "suspended"]
# "dsgw": a dsgw gateway (signed peer tokens); "dsp": a DSP connector that is no dsgw gateway
# (no keys: its callbacks on our processes carry the callback key our request gave it).
PeerKind = Literal["dsgw", "dsp"]
# A peer's id is its issuer URL: an http(s) URL, no whitespace.
PEER_ID_PATTERN = r"^https?://[^\s]{1,490}$"
PEER_ID_MAX = 500


class Peer(Base):
    """A peer gateway this gateway trusts to speak DSP for the participants whose home it is."""

    __tablename__ = "peers"

    id: Mapped[str] = mapped_column(String(PEER_ID_MAX), primary_key=True)
    dsp_url: Mapped[str] = mapped_column(String(2000))
    jwks: Mapped[dict]
    jwks_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    # The ids of this gateway's participants the peer acts for (their home gateway).
    participants: Mapped[list]
    # Outgoing: {id of one of our participants: its id at the peer} (registered there, home
    # here): the `participant_id` of the peer tokens this gateway signs when it acts for it.
    accounts: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="active")
    kind: Mapped[str] = mapped_column(String(10), default="dsgw", server_default="dsgw")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UsedPeerToken(Base):
    """A peer token's `jti`, kept until the token expires so that it cannot be replayed."""

    __tablename__ = "used_peer_tokens"
    __table_args__ = (UniqueConstraint("peer_id", "jti"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    peer_id: Mapped[str] = mapped_column(String(PEER_ID_MAX))
    jti: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class PeerCreate(BaseModel):
    """What the platform admin submits to register a peer gateway."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(
        max_length=PEER_ID_MAX,
        pattern=PEER_ID_PATTERN,
        description="the peer's issuer URL: its DSP participantId, the iss and sub of its tokens",
    )
    dsp_url: str = Field(
        max_length=2000, pattern=r"^https?://[^\s]+$", description="the peer's DSP base URL"
    )
    kind: PeerKind = Field(
        "dsgw",
        description="dsgw: a dsgw gateway, authenticated by its signed peer tokens (jwks or "
        "jwks_url required); dsp: a DSP connector that is no dsgw gateway (no keys; its "
        "callbacks on our federated processes carry the per-process callback key this "
        "gateway's request gave it; its participants here, if any, authenticate with this "
        "gateway's access tokens and verify DSP agreements by message, specs/dsp.md)",
    )
    jwks: JWKS | None = Field(None, description="the peer's Ed25519 public keys (RFC 7517)")
    jwks_url: str | None = Field(
        None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="where to fetch the peer's JWKS once, at registration (when jwks is absent; "
        "under the gateway's egress rules)",
    )
    participants: list[Identifier] = Field(
        default=[],
        max_length=1000,
        description="ids of participants registered here whose home is this peer: the ones its "
        "tokens may act for (a dsgw peer), or the consumers that are this DSP connector (a dsp "
        "peer)",
    )
    accounts: dict[Identifier, Identifier] = Field(
        default={},
        max_length=1000,
        description="our participants' ids at the peer ({id here: id there}): whom this gateway's "
        "own peer tokens name when it acts for one of them at the peer (federation)",
    )


class PeerStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500, pattern=r"^[^\x00]*$")


class PeerRead(BaseModel):
    id: str
    kind: str = "dsgw"
    dsp_url: str
    jwks: dict
    jwks_url: str | None
    participants: list[str]
    accounts: dict[str, str] = {}
    status: str
    created_at: datetime
    updated_at: datetime
    ledger_seq: int | None = None


class PeerList(BaseModel):
    items: list[PeerRead]
