"""Exchanges: a consumer's request for data under a contract, and every decision on it."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.compute.models import Aggregate, Filter, PrivacyRead
from gateway.core.db import Base
from gateway.core.types import FieldName, Identifier, Purpose


class Decision(Base):
    """One policy decision, allowed or denied, with the exact input and result."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(40))
    contract_id: Mapped[str | None] = mapped_column(String(40))
    allow: Mapped[bool]
    input: Mapped[dict]
    result: Mapped[dict]
    policy_version: Mapped[str | None] = mapped_column(String(80))
    rows_delivered: Mapped[int] = mapped_column(default=0)
    ledger_seq: Mapped[int | None]
    created_at: Mapped[datetime]


# A page of rows in a JSON reply: the default and the most one reply holds. Larger data moves
# as a transfer (specs/transfers.md), streamed in constant memory.
DEFAULT_PAGE_ROWS = 10_000
MAX_PAGE_ROWS = 100_000
Cursor = Annotated[
    str, StringConstraints(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_.-]+$")
]


class ExchangeRequest(BaseModel):
    """What a consumer asks for: data under a contract, for a purpose."""

    model_config = ConfigDict(extra="forbid")
    contract_id: Identifier
    purpose: Purpose
    delivery: Literal["api", "file", "compute"] = Field(
        "api",
        description="api: rows in the reply; file: the rows as a JSON Lines file whose SHA-256 "
        "is on the ledger; compute: differentially private aggregates computed in the gateway "
        "within the offer's compute terms (raw rows never leave; specs/compute.md)",
    )
    group_by: list[FieldName] | None = Field(
        None,
        max_length=20,
        description="compute only: fields of the resource to group on; default one group",
    )
    fields: list[FieldName] | None = Field(
        None,
        max_length=200,
        description="fields of the resource wanted; default: all the contract allows",
    )
    limit: int | None = Field(
        None,
        gt=0,
        le=MAX_PAGE_ROWS,
        description="api and file only: at most this many rows (one page); default "
        f"{DEFAULT_PAGE_ROWS:,}",
    )
    cursor: Cursor | None = Field(
        None,
        description="api and file only: the `next_cursor` of the previous page, to continue "
        "where it ended (each page is its own decision, metered and recorded)",
    )
    # compute only (specs/compute.md): what to compute, over which declared filters.
    aggregates: list[Aggregate] | None = Field(
        None, min_length=1, max_length=10, description="compute only: the aggregates wanted"
    )
    filters: list[Filter] | None = Field(
        None, max_length=4, description="compute only: declared equality or range filters"
    )

    @model_validator(mode="after")
    def _group_by_only_for_compute(self) -> "ExchangeRequest":
        if self.group_by is not None and self.delivery != "compute":
            raise ValueError("group_by applies to compute delivery only")
        return self

    @model_validator(mode="after")
    def _compute_asks_declared_aggregates(self) -> "ExchangeRequest":
        compute_only = {"aggregates": self.aggregates, "filters": self.filters}
        if self.delivery == "compute" and self.cursor is not None:
            raise ValueError("cursor does not apply to compute: it pages rows, never offered")
        if self.delivery != "compute":
            sent = sorted(name for name, value in compute_only.items() if value is not None)
            if sent:
                raise ValueError(f"{', '.join(sent)} apply to compute delivery only")
            return self
        # Row selection lets two answers be differenced: compute offers none (specs/compute.md).
        if self.limit is not None:
            raise ValueError("limit does not apply to compute: it selects rows, never offered")
        if self.fields is not None:
            raise ValueError("compute takes aggregates (each naming its field), not fields")
        if self.aggregates is None:
            raise ValueError('compute needs aggregates, e.g. [{"op": "count"}]')
        return self

    def requested(self, available: list[str]) -> list[str]:
        """Return the requested field names, defaulting to `available`."""
        return list(self.fields) if self.fields is not None else list(available)


class OpenExchangeRequest(BaseModel):
    """What any authenticated participant asks of an open product: L1 public data, no contract."""

    model_config = ConfigDict(extra="forbid")
    purpose: Purpose
    delivery: Literal["api", "file"] = Field(
        "api",
        description="api: rows in the reply; file: the rows as a JSON Lines file whose SHA-256 "
        "is on the ledger (compute runs under a contract, whose terms it needs)",
    )
    fields: list[FieldName] | None = Field(
        None, max_length=200, description="fields wanted; default: all the product's offers expose"
    )
    limit: int | None = Field(
        None,
        gt=0,
        le=MAX_PAGE_ROWS,
        description="at most this many rows, one page (the policy caps them too); default "
        f"{DEFAULT_PAGE_ROWS:,}",
    )
    cursor: Cursor | None = Field(
        None, description="the `next_cursor` of the previous page, to continue where it ended"
    )

    def requested(self, available: list[str]) -> list[str]:
        """Return the requested field names, defaulting to `available`."""
        return list(self.fields) if self.fields is not None else list(available)


class Reason(BaseModel):
    code: str
    title: str
    detail: str


class Obligations(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mask: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)
    row_cap: int | None = None
    min_group_size: int | None = None
    watermark: bool = False
    dp: dict[str, float] | None = None


class Receipt(BaseModel):
    """The ledger entry that records this exchange: check it against the gateway's keys."""

    seq: int
    hash: str
    sig: str
    kid: str
    body: dict
    url: str | None = Field(
        None,
        description="where to fetch this receipt with its inclusion proof once the next "
        "checkpoint is signed (GET; dsgw ledger verify-receipt checks it offline)",
    )


class FileDelivery(BaseModel):
    """A file delivery: the delivered rows as JSON Lines; its SHA-256 is on the ledger."""

    name: str
    media_type: str
    sha256: str
    bytes: int
    content: str


class ExchangeResult(BaseModel):
    exchange_id: str
    contract_id: str | None = Field(description="null for open data, pulled without a contract")
    product_id: str | None = Field(None, description="open data: the product pulled")
    purpose: str
    fields: list[str]
    masked: list[str]
    row_count: int
    rows: list[dict[str, Any]]
    watermark: str | None
    content_hash: str
    receipt: Receipt
    delivery: str = "api"
    file: FileDelivery | None = Field(None, description="file delivery: the file (rows is empty)")
    privacy: PrivacyRead | None = Field(
        None, description="compute delivery: the ε this release spent, what is left, the noise"
    )
    offset: int = Field(0, description="api and file: the row of the data this page starts at")
    next_cursor: str | None = Field(
        None,
        description="api and file: present when the page is full, so that more rows may follow; "
        "send it as `cursor` with the same fields for the next page",
    )


class DecisionRead(BaseModel):
    id: str
    subject_id: str
    contract_id: str | None
    allow: bool
    input: dict
    result: dict
    policy_version: str | None
    rows_delivered: int
    ledger_seq: int | None
    created_at: datetime
