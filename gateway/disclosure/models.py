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
    """What was actually charged in the year, from the settlement's closed periods of the year
    (invoices, vouchers, refunds); and, as before, the contracts finalised and the exchanges."""

    contracts: int = Field(description="contracts finalised (countersigned) in the year")
    contract_fees_fen: int = Field(
        description="sum of those contracts' flat prices (the contract price, not what was "
        "charged: see charged_fen)"
    )
    exchanges: int = Field(description="exchanges allowed and delivered in the year")
    rows_delivered: int
    invoices: int = Field(0, description="invoices of the year's closed periods")
    charged_fen: int = Field(
        0, description="the actual fees: the invoices' totals in the year's closed periods"
    )
    voucher_fen: int = Field(0, description="of which data vouchers (数据券) paid")
    refunded_fen: int = Field(0, description="credit notes of the year's closed periods")
    net_fen: int = Field(0, description="charged_fen less refunded_fen")


class SettlementCoverage(BaseModel):
    """Which periods of the year the settlement has closed: the fees above are theirs."""

    closed_periods: list[str] = Field(description="the year's closed months, YYYY-MM")
    open_periods: list[str] = Field(description="the year's months not closed (yet)")
    complete: bool = Field(
        description="true once the year's December is closed: every usage of the year is then "
        "settled (a close settles all usage before its end not settled earlier)"
    )
    publish_by: str = Field(description="the disclosure is due by the end of March next year")


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
    settlement: SettlementCoverage | None = Field(
        None, description="the closed periods the fees come from (added with issue 12)"
    )
