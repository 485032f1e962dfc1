"""Settlement (清算 / 收益分配): closed periods, their invoices and signed statements."""

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base

PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
PeriodParam = Annotated[
    str, Path(min_length=7, max_length=7, pattern=PERIOD_PATTERN, description="month, YYYY-MM")
]
DOCUMENT_ID_PATTERN = r"^(inv|stm)_[0-9]{4}-[0-9]{2}_[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DocumentIdParam = Annotated[str, Path(min_length=1, max_length=100, pattern=DOCUMENT_ID_PATTERN)]


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


class StatementLine(BaseModel):
    invoice: str
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


class StatementRead(BaseModel):
    """A party's statement of a period, signed with the gateway's ledger key (JCS, Ed25519)."""

    statement: Statement
    hash: str = Field(description="hex SHA-256 of the JCS of `statement`")
    sig: str = Field(description="base64url Ed25519 signature of the JCS of `statement`")
    kid: str
    ledger_seq: int


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
    total_fen: int
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
    statements: list[dict]
    invoiced_fen: int
    debits_fen: int
    credits_fen: int
    closed_at: datetime
    closed_by: str
    ledger_seq: int = Field(description="the seq of its settlement.closed entry")
    already_closed: bool = Field(
        False, description="true when this close found the period closed and changed nothing"
    )
