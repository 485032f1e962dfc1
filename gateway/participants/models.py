"""Participants: organisations identified by their unified social credit code, with keys."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.participants import uscc
from ledger.ed25519 import public_key_bytes
from ledger.errors import LedgerKeyError

# voucher_issuer: a government body that issues data vouchers (数据券, gateway/settlement).
Role = Literal["holder", "operator", "merchant", "consumer", "auditor", "admin", "voucher_issuer"]
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

    def usable_keys(self) -> list[dict]:
        """Return the active keys that pass today's checks of a JWK (PublicJWK), skipping any
        stored before those checks that does not: a bad key never authenticates or signs."""
        keys = self.jwks.get("keys") if isinstance(self.jwks, dict) else None
        return [k for k in keys or [] if is_usable_jwk(k)]


# A kid names a key in URLs (/participants/{id}/keys/{kid}/retire) and JWS headers: RFC 3986
# unreserved characters only, and short. An RFC 7638 thumbprint (the default kid) is 43.
KID_PATTERN = r"^[A-Za-z0-9._~-]{1,128}$"
KID_MAX = 128
# The names of a JWS signed with an Ed25519 key: RFC 8037's polymorphic EdDSA and RFC 9864's
# fully specified Ed25519. The gateway emits EdDSA (specs/README.md) and accepts both.
ED25519_ALGS = ("EdDSA", "Ed25519")
# Canonical unpadded base64url of 32 bytes: 43 characters, the last with its 2 unused bits zero.
X_PATTERN = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"


class PublicJWK(BaseModel):
    """An Ed25519 public key as an RFC 8037 OKP JWK, checked in full when it arrives."""

    model_config = ConfigDict(extra="allow")
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(
        max_length=64,
        description="the 32-byte public key, unpadded canonical base64url (43 characters); "
        "small-order and non-canonical points are refused",
        # What the check below accepts, for the schema (the check itself says what is wrong).
        json_schema_extra={"minLength": 43, "maxLength": 43, "pattern": X_PATTERN},
    )
    kid: str | None = Field(None, max_length=KID_MAX, pattern=KID_PATTERN)
    alg: Literal["EdDSA", "Ed25519"] | None = None
    use: Literal["sig"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _public_only(cls, value):
        if isinstance(value, dict) and "d" in value:
            raise ValueError("this is a private key: register only the public part (no 'd')")
        return value

    @field_validator("x")
    @classmethod
    def _strong_point(cls, value: str) -> str:
        try:
            public_key_bytes(value)
        except LedgerKeyError as exc:
            raise ValueError(str(exc)) from None
        return value


class JWKS(BaseModel):
    keys: list[PublicJWK] = Field(min_length=1, max_length=10)


class JWKSRead(BaseModel):
    """A participant's usable active keys (RFC 7517 JWK set)."""

    keys: list[PublicJWK]


def is_usable_jwk(jwk: object) -> bool:
    """Return whether a stored JWK is a valid public Ed25519 key with a valid kid."""
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
        return False
    try:
        PublicJWK.model_validate(jwk)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return False
    return True


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
