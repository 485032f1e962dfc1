"""Data resources registered by holders, graded after GB/T 43697-2024, with their dataset."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base

Grade = Literal["core", "important", "general"]
Level = Literal["L1", "L2", "L3", "L4"]
FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class Resource(Base):
    __tablename__ = "resources"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(100))
    grade: Mapped[str] = mapped_column(String(20))
    level: Mapped[str | None] = mapped_column(String(4))
    personal_information: Mapped[bool]
    sensitive_personal_information: Mapped[bool]
    fields: Mapped[list]
    update_cycle: Mapped[str] = mapped_column(String(40))
    rows: Mapped[list]
    created_at: Mapped[datetime]


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=FIELD_NAME)
    description: str = ""
    personal: bool = False
    sensitive: bool = False


class ResourceCreate(BaseModel):
    """A holder's registration of a data resource and (optionally) its rows."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    domain: str = Field(min_length=1, max_length=100, description="industry domain")
    grade: Grade
    level: Level | None = Field(None, description="sub-level, only for grade 'general'")
    personal_information: bool = False
    sensitive_personal_information: bool = False
    fields: list[FieldSpec] = Field(min_length=1, max_length=200)
    update_cycle: str = Field("static", max_length=40)
    rows: list[dict[str, Any]] = Field(default_factory=list, max_length=100_000)

    @model_validator(mode="after")
    def _consistent(self) -> "ResourceCreate":
        if self.grade == "general" and self.level is None:
            raise ValueError("grade 'general' needs a level: L1, L2, L3 or L4")
        if self.grade != "general" and self.level is not None:
            raise ValueError(f"grade {self.grade!r} has no sub-level; leave level out")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        known = set(names)
        for index, row in enumerate(self.rows):
            extra = set(row) - known
            if extra:
                raise ValueError(f"row {index} has fields not declared: {sorted(extra)}")
        if any(f.sensitive for f in self.fields) and not self.sensitive_personal_information:
            self.sensitive_personal_information = True
        if any(f.personal or f.sensitive for f in self.fields):
            self.personal_information = True
        return self


class ResourceRead(BaseModel):
    id: str
    holder_id: str
    name: str
    domain: str
    grade: str
    level: str | None
    personal_information: bool
    sensitive_personal_information: bool
    fields: list[FieldSpec]
    update_cycle: str
    row_count: int
    created_at: datetime
    ledger_seq: int | None = None
