"""The shapes of the yearly disclosure (年度公开): authorisations, products and actual fees."""

from datetime import datetime

from pydantic import BaseModel, Field


class Party(BaseModel):
    id: str
    name: str
    uscc: str


class DisclosedResource(BaseModel):
    id: str
    code: str | None
    name: str
    grade: str
    level: str | None


class DisclosedAuthorisation(BaseModel):
    id: str
    holder: Party
    operator: Party
    resources: list[DisclosedResource]
    product_kinds: list[str]
    not_before: datetime
    not_after: datetime
    fee_cap_fen: int
    revenue_share: dict[str, int]
    security_obligations: list[str]
    status: str
    ended_at: datetime | None


class Fees(BaseModel):
    """What was actually charged in the year: finalised contracts' prices, and exchanges."""

    contracts: int = Field(description="contracts finalised (countersigned) in the year")
    contract_fees_fen: int = Field(description="sum of those contracts' prices, integer fen")
    exchanges: int = Field(description="exchanges allowed and delivered in the year")
    rows_delivered: int


class DisclosedProduct(BaseModel):
    id: str
    name: str
    merchant: Party
    authorisation_id: str
    resource: DisclosedResource
    delivery_modes: list[str]
    public_interest: bool
    status: str
    listed_at: datetime = Field(description="when the product was first listed")
    offer_prices_fen: list[int]
    fees: Fees


class Disclosure(BaseModel):
    year: int
    generated_at: datetime
    publisher: str
    period: dict[str, datetime]
    authorisations: list[DisclosedAuthorisation]
    products: list[DisclosedProduct]
    totals: dict[str, int]
