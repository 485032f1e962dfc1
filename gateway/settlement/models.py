"""Settlement (清算 / 收益分配): closed periods, their invoices and signed statements."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.core.types import Fen, Identifier, Moment, ShortText

PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
PeriodParam = Annotated[
    str, Path(min_length=7, max_length=7, pattern=PERIOD_PATTERN, description="month, YYYY-MM")
]
# Where the party begins in a statement's id, stm_<YYYY-MM>_<party> (1-based, as SQL's substr).
STATEMENT_PARTY_AT = len("stm_2026-01_") + 1
VoucherIdParam = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^vch_[A-Za-z0-9_-]{1,60}$")
]
AuthorisationIdParam = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^auz_[A-Za-z0-9_-]{1,60}$")
]
DOCUMENT_ID_PATTERN = r"^(inv|stm)_[0-9]{4}-[0-9]{2}_[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DocumentIdParam = Annotated[str, Path(min_length=1, max_length=100, pattern=DOCUMENT_ID_PATTERN)]
CREDIT_NOTE_ID_PATTERN = r"^crn_[0-9]{4}-[0-9]{2}_rfd_[A-Za-z0-9_-]{1,60}$"
CreditNoteIdParam = Annotated[
    str, Path(min_length=1, max_length=100, pattern=CREDIT_NOTE_ID_PATTERN)
]
RefundIdParam = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^rfd_[A-Za-z0-9_-]{1,60}$")
]


class SettlementPeriod(Base):
    """One closed period: closing it again finds this row and changes nothing."""

    __tablename__ = "settlement_periods"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    through_seq: Mapped[int] = mapped_column(BigInteger)
    ledger_seq: Mapped[int] = mapped_column(BigInteger)  # its settlement.closed entry
    summary: Mapped[dict]
    closed_by: Mapped[str] = mapped_column(String(40))
    closed_at: Mapped[datetime]


class SettlementDocument(Base):
    """An invoice (per contract) or a statement (per party) of a closed period."""

    __tablename__ = "settlement_documents"
    __table_args__ = (Index("ix_settlement_documents_period", "period", "kind"),)

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    period: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(20))  # invoice | statement
    readers: Mapped[list]  # the participants who may read it (besides admin and auditors)
    body: Mapped[dict]  # the invoice, or the statement's entry data (statement, hash, sig, kid)
    ledger_seq: Mapped[int] = mapped_column(BigInteger)


class Voucher(Base):
    """A data voucher (数据券) a voucher issuer gave an enterprise; its balance is the ledger's."""

    __tablename__ = "settlement_vouchers"
    __table_args__ = (Index("ix_settlement_vouchers_enterprise", "enterprise_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    issuer_id: Mapped[str] = mapped_column(String(40))
    enterprise_id: Mapped[str] = mapped_column(String(40))
    terms: Mapped[dict]  # the data of its voucher.issued entry
    balance_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))  # active | expired
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class VoucherIssue(BaseModel):
    """A voucher issuer's data voucher for an enterprise (a consumer)."""

    model_config = ConfigDict(extra="forbid")
    enterprise_id: Identifier
    amount_fen: Fen = Field(gt=0)
    not_before: Moment | None = Field(None, description="defaults to now")
    not_after: Moment
    grades: list[Literal["general", "important"]] | None = Field(
        None, min_length=1, description="the product grades it may pay for; null: any"
    )
    domains: list[ShortText] | None = Field(
        None,
        min_length=1,
        max_length=50,
        description="the product domains it may pay for ('finance' also covers 'finance/…'); "
        "null: any",
    )
    max_share_percent: int = Field(
        100, ge=1, le=100, description="the share of an invoice it may cover, in percent"
    )

    @model_validator(mode="after")
    def _valid(self) -> "VoucherIssue":
        for moment in (self.not_before, self.not_after):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("times must carry a UTC offset (RFC 3339)")
        if self.not_before and self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        return self


class RefundRequest(BaseModel):
    """A refund to a consumer of part of a closed invoice: named directly, or through a
    delivery (an exchange `dec_…` or a transfer `trf_…`) the invoice settled."""

    model_config = ConfigDict(extra="forbid")
    contract_id: Identifier
    invoice_id: str | None = Field(
        None, min_length=1, max_length=100, pattern=DOCUMENT_ID_PATTERN,
        description="the closed invoice (inv_<period>_<contract>) to refund part of",
    )  # fmt: skip
    delivery_id: str | None = Field(
        None, min_length=5, max_length=64, pattern=r"^(dec|trf)_[A-Za-z0-9_-]{1,60}$",
        description="or the exchange (dec_…) or transfer (trf_…) whose invoice is refunded",
    )  # fmt: skip
    amount_fen: Fen = Field(gt=0, description="at most what the invoice charged, net of refunds")
    reason: ShortText = Field(description="why: bad data, an outage, …")

    @model_validator(mode="after")
    def _one_target(self) -> "RefundRequest":
        if (self.invoice_id is None) == (self.delivery_id is None):
            raise ValueError("name exactly one of invoice_id and delivery_id")
        return self


class RefundRead(BaseModel):
    """A refund as its `settlement.refund` entry records it; its credit note is the next
    close's (null until then)."""

    id: str
    invoice_id: str
    contract_id: str
    consumer_id: str
    provider_id: str
    delivery_id: str | None
    amount_fen: int
    reason: str
    by: str
    refundable_fen: int = Field(description="what is left of the invoice's charge to refund")
    credit_note_id: str | None
    ledger_seq: int = Field(description="the seq of its settlement.refund entry")


class CreditNoteRead(BaseModel):
    """A refund's credit note (the close after the refund): the invoice's split reversed, the
    voucher parts back to their issuers, the rest to the consumer, and its journal."""

    credit_note: str
    period: str
    refund: str
    refund_seq: int
    invoice: str
    contract: str
    consumer: str
    provider: str
    authorisation: str
    amount_fen: int
    vouchers: list[dict] = Field(description="voucher parts given back: voucher, issuer, fen")
    voucher_fen: int
    consumer_fen: int = Field(description="what goes back to the consumer")
    shares: dict = Field(description="per role, what the party gives back (party, amount_fen)")
    journal: list[dict]
    ledger_seq: int


class CeilingSet(BaseModel):
    """The holder's ceiling on the operator's income per period under an authorisation; null
    removes it from `from_period` on."""

    model_config = ConfigDict(extra="forbid")
    ceiling_fen: Fen | None = Field(
        description="the most the operator may earn per period, in fen; null: no ceiling"
    )
    from_period: str | None = Field(
        None,
        min_length=7,
        max_length=7,
        pattern=PERIOD_PATTERN,
        description="the first period it rules (YYYY-MM, after the last closed one); "
        "default: the current month",
    )


class CeilingRead(BaseModel):
    """A ceiling as its `settlement.ceiling-set` entry records it."""

    authorisation_id: str
    holder_id: str
    operator_id: str
    ceiling_fen: int | None = Field(description="null: the ceiling is removed")
    from_period: str
    ledger_seq: int = Field(description="the seq of its settlement.ceiling-set entry")


class VoucherRead(BaseModel):
    id: str
    issuer_id: str
    enterprise_id: str
    amount_fen: int
    not_before: str
    not_after: str
    grades: list[str] | None
    domains: list[str] | None
    max_share_percent: int
    balance_fen: int = Field(description="what is left after the closed periods' redemptions")
    status: str = Field(description="active, or expired (by a close after its not_after)")
    ledger_seq: int = Field(description="the seq of its voucher.issued entry")


class StatementLine(BaseModel):
    invoice: str = Field(description="the invoice, or the credit note (crn_…, negative amounts)")
    contract: str
    role: str = Field(description="consumer (owes), or holder, operator, platform (earns)")
    amount_fen: int


class Statement(BaseModel):
    format: str
    statement: str
    period: str
    start: str
    end: str
    party: str
    lines: list[StatementLine]
    owes_fen: int
    earns_fen: int
    ceilings: list[dict] = Field(
        default_factory=list,
        description="an operator's authorisations under a ceiling: carried_in_fen, "
        "deducted_fen, income_fen, ceiling_fen, excess_fen, carried_out_fen",
    )


class StatementRead(BaseModel):
    """A party's statement of a period, signed with the gateway's ledger key (JCS, Ed25519)."""

    statement: Statement
    hash: str = Field(description="hex SHA-256 of the JCS of `statement`")
    sig: str = Field(description="base64url Ed25519 signature of the JCS of `statement`")
    kid: str
    ledger_seq: int


class StatementSummary(BaseModel):
    """A statement as a list shows it: open it whole at GET /settlement/statements/{id}."""

    id: str = Field(description="stm_<period>_<party>")
    party: str
    period: str
    owes_fen: int = Field(description="what the party owes (negative after refunds exceed it)")
    earns_fen: int = Field(description="what the party earns (negative after refunds exceed it)")
    ledger_seq: int = Field(description="the seq of its settlement.statement entry")


class InvoiceRead(BaseModel):
    """A contract's invoice of a period, as its `settlement.invoice` entry records it."""

    invoice: str
    period: str
    contract: str
    consumer: str
    provider: str
    product: str
    offer: str
    authorisation: str
    public_interest: bool
    terms_hash: str
    usage: dict
    lines: list[dict]
    subtotal_fen: int
    fee_cap_fen: int
    fee_cap_deduction_fen: int
    ceiling_deduction_fen: int = Field(
        0, description="the operator's income above its ceiling in earlier periods, taken off"
    )
    total_fen: int
    vouchers: list[dict] = Field(description="voucher parts applied: voucher, issuer, amount_fen")
    voucher_refusals: list[dict] = Field(
        description="the consumer's vouchers not applied, with why: expired, not-yet-valid, "
        "ineligible-product, exhausted"
    )
    voucher_fen: int
    consumer_due_fen: int = Field(description="what the consumer owes: total less vouchers")
    shares: dict
    journal: list[dict]
    ledger_seq: int


class PeriodRead(BaseModel):
    """A closed period: what it covers and what it produced."""

    period: str
    start: str
    end: str
    through_seq: int = Field(description="the last ledger entry the close could settle")
    invoices: list[str]
    credit_notes: list[str] = Field(
        default_factory=list, description="the credit notes of the refunds it settled"
    )
    statements: list[dict]
    invoiced_fen: int
    refunded_fen: int = Field(0, description="the sum of its credit notes")
    vouchers_fen: int = 0
    ceiling_deducted_fen: int = 0
    ceiling_carried_fen: int = Field(0, description="carried as a deduction into the next period")
    debits_fen: int
    credits_fen: int
    closed_at: datetime
    closed_by: str
    ledger_seq: int = Field(description="the seq of its settlement.closed entry")
    already_closed: bool = Field(
        False, description="true when this close found the period closed and changed nothing"
    )
