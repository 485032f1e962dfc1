"""Data products derived from resources, with the offers consumers can request."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from contracts import Offer
from gateway.core.db import Base

DeliveryMode = Literal["api", "file", "compute"]


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    authorisation_id: Mapped[str] = mapped_column(ForeignKey("authorisations.id"))
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str]
    delivery_modes: Mapped[list]
    public_interest: Mapped[bool]
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class ProductOffer(Base):
    __tablename__ = "offers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    terms: Mapped[dict]
    created_at: Mapped[datetime]


class ProductCreate(BaseModel):
    """A merchant's product from a resource it is authorised for, with its offers."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    resource_id: str
    authorisation_id: str
    delivery_modes: list[DeliveryMode] = Field(min_length=1)
    public_interest: bool = False
    offers: list[Offer] = Field(min_length=1, max_length=20)


class OfferRead(BaseModel):
    id: str
    product_id: str
    terms: dict
    odrl: dict


class ProductRead(BaseModel):
    id: str
    merchant_id: str
    authorisation_id: str
    resource_id: str
    name: str
    description: str
    delivery_modes: list[str]
    public_interest: bool
    status: str
    offers: list[OfferRead]
    created_at: datetime
    ledger_seq: int | None = None
