"""Participants: organisations identified by their unified social credit code, with keys."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.participants import uscc

Role = Literal["holder", "operator", "merchant", "consumer", "auditor", "admin"]
Region = Literal["domestic", "cross_border"]


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    roles: Mapped[list]
    region: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="active")
    jwks: Mapped[dict]
    created_at: Mapped[datetime]
    # Keys retired from `jwks`, each with its `retired_at`: kept for the record, never trusted.
    retired_keys: Mapped[list] = mapped_column(default=list)
    # Access tokens authenticated before this moment are refused (set when a key is retired).
    tokens_not_before: Mapped[datetime | None] = mapped_column(default=None)


class PublicJWK(BaseModel):
    """An Ed25519 public key as an RFC 8037 OKP JWK."""

    model_config = ConfigDict(extra="allow")
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]+$")
    kid: str | None = None
    alg: Literal["EdDSA"] | None = None
    use: Literal["sig"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _public_only(cls, value):
        if isinstance(value, dict) and "d" in value:
            raise ValueError("this is a private key: register only the public part (no 'd')")
        return value


class JWKS(BaseModel):
    keys: list[PublicJWK] = Field(min_length=1, max_length=10)


class ParticipantCreate(BaseModel):
    """What the platform admin submits to onboard an organisation."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    uscc: str = Field(
        min_length=18,
        max_length=18,
        description="18-character unified social credit code (GB 32100-2015)",
    )
    roles: list[Role] = Field(min_length=1, max_length=6)
    region: Region = "domestic"
    jwks: JWKS

    @field_validator("uscc")
    @classmethod
    def _valid_uscc(cls, value: str) -> str:
        try:
            return uscc.validate(value)
        except uscc.InvalidUSCC as exc:
            raise ValueError(str(exc)) from None

    @field_validator("roles")
    @classmethod
    def _distinct_roles(cls, roles: list[str]) -> list[str]:
        return sorted(set(roles))


class ParticipantRead(BaseModel):
    id: str
    name: str
    uscc: str
    roles: list[str]
    region: str
    status: str
    allowed_actions: list[str] = []
    jwks: dict = Field(description="the active public keys (RFC 7517 JWKS)")
    retired_keys: list[dict] = Field(default=[], description="retired keys, with retired_at")
    created_at: datetime
    ledger_seq: int | None = None


class StatusChange(BaseModel):
    """Why the admin suspends or reinstates a participant."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class KeyRetirement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)
