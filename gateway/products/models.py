"""Data products derived from resources, with the offers consumers can request."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import JSON

from contracts import Offer
from gateway.core.db import Base
from gateway.core.types import Identifier

DeliveryMode = Literal["api", "file", "compute"]
# Text the databases can store and compare: no NUL character (PostgreSQL refuses it).
TEXT = r"^[^\x00]*$"

# GB/T 36344-2018 data quality dimensions: API key → the standard's name.
QUALITY_DIMENSIONS: dict[str, str] = {
    "conformity": "规范性",
    "completeness": "完整性",
    "accuracy": "准确性",
    "consistency": "一致性",
    "timeliness": "时效性",
    "accessibility": "可访问性",
}
# Computed from the resource's dataset; the merchant states the others.
COMPUTED_DIMENSIONS = ("completeness", "consistency", "conformity")


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        # The catalogue: listed products, newest first, optionally by grade or domain.
        Index("ix_products_catalogue", "status", "created_at", "id"),
        # Covers every structured catalogue filter, so counting the matches reads no table row.
        Index(
            "ix_products_filters",
            "status",
            "grade",
            "level",
            "domain",
            "modes",
            "public_interest",
            "created_at",
            "id",
        ),
        Index("ix_products_authorisation", "authorisation_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    authorisation_id: Mapped[str] = mapped_column(ForeignKey("authorisations.id"))
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str]
    delivery_modes: Mapped[list]
    # ",api,file," — the delivery modes as one searchable string (the catalogue filters on it).
    modes: Mapped[str] = mapped_column(String(40), default="")
    public_interest: Mapped[bool]
    # Copied from the resource at creation so that the catalogue filters without a join.
    grade: Mapped[str] = mapped_column(String(20), default="general")
    level: Mapped[str | None] = mapped_column(String(4), default=None)
    domain: Mapped[str] = mapped_column(String(100), default="")
    holder_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # Name and description in lower case: what the catalogue's free-text search reads.
    search_text: Mapped[str] = mapped_column(default="")
    quality: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20))
    status_reason: Mapped[str | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class ProductOffer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_product", "product_id", "position"),
        Index("ix_offers_region", "product_id", "region"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    position: Mapped[int] = mapped_column(default=0)  # the order the merchant gave
    region: Mapped[str] = mapped_column(String(20), default="domestic")  # the offer's region term
    terms: Mapped[dict]
    # {delivery mode: the policy's exposure} of everything this offer allows (就高从严).
    exposure: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]


class StatedScore(BaseModel):
    """A quality score the merchant states (0 to 1), with how it was established."""

    model_config = ConfigDict(extra="forbid")
    score: float = Field(ge=0, le=1)
    basis: str = Field("", max_length=1000, pattern=TEXT)


class StatedQuality(BaseModel):
    """The GB/T 36344 dimensions the gateway cannot compute from the dataset."""

    model_config = ConfigDict(extra="forbid")
    accuracy: StatedScore | None = None
    timeliness: StatedScore | None = None
    accessibility: StatedScore | None = None


class ProductCreate(BaseModel):
    """A merchant's product from a resource it is authorised for, with its offers."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    description: str = Field("", max_length=4000, pattern=TEXT)
    resource_id: Identifier
    authorisation_id: Identifier
    delivery_modes: list[DeliveryMode] = Field(min_length=1, max_length=3)
    public_interest: bool = False
    quality: StatedQuality = Field(default_factory=StatedQuality)
    offers: list[Offer] = Field(min_length=1, max_length=20)


class ProductAction(BaseModel):
    """Why a product changes state (kept in its ledger entry)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000, pattern=TEXT)


class OfferRead(BaseModel):
    id: str
    product_id: str
    terms: dict
    odrl: dict
    exposure: dict | None = Field(
        None, description="per delivery mode, the grade the policy derives from what it exposes"
    )


class ProductRead(BaseModel):
    id: str
    merchant_id: str
    authorisation_id: str
    resource_id: str
    lineage: list[dict]
    name: str
    description: str
    delivery_modes: list[str]
    public_interest: bool
    open_data: bool = Field(
        False,
        description="open data (L1 public, no personal information, as the policy judged it): "
        "any authenticated participant pulls it without a contract at "
        "POST /open-data/{product_id}/exchanges",
    )
    grade: str
    level: str | None
    domain: str
    quality: dict
    status: str
    status_reason: str | None
    allowed_next_states: list[str]
    offers: list[OfferRead]
    created_at: datetime
    updated_at: datetime | None
    ledger_seq: int | None = None
