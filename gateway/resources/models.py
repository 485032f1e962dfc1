"""Data resources registered by holders, graded after GB/T 43697-2024, with their dataset."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base
from gateway.core.types import FIELD_NAME_PATTERN, TEXT_PATTERN, ShortText, check_json_value
from gateway.dataplane.addresses import FilesAddress, HttpAddress, ObjectAddress, SqlAddress
from gateway.resources.commitment import ADDRESS_SCHEME, SCHEME

Grade = Literal["core", "important", "general"]
Level = Literal["L1", "L2", "L3", "L4"]
FIELD_NAME = FIELD_NAME_PATTERN


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
    # Where the data lives (specs/dataplane.md): the public part of a sql, http, object or
    # files address; None: the rows posted with the registration, in `embedded_datasets`.
    data_address: Mapped[dict | None] = mapped_column(default=None)
    # The address's secret part, sealed (gateway/dataplane/secrets.py); never shown.
    data_secret: Mapped[str | None] = mapped_column(Text, default=None)
    # The key of the dataset's commitment (gateway/resources/commitment.py): holder and
    # auditors only.
    dataset_salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # Registration (登记): "registering" until coded, then "coded"; "rejected" or "cancelled".
    status: Mapped[str] = mapped_column(String(20), default="registering")
    code: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    version: Mapped[int] = mapped_column(default=0)
    details: Mapped[dict] = mapped_column(default=dict)


class Registration(Base):
    """One registration of a resource: initial, change, correction or cancellation."""

    __tablename__ = "registrations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    changes: Mapped[dict]
    reason: Mapped[str]
    publicity_starts_at: Mapped[datetime | None] = mapped_column(default=None)
    publicity_ends_at: Mapped[datetime | None] = mapped_column(default=None)
    objections: Mapped[list] = mapped_column(default=list)
    code: Mapped[str | None] = mapped_column(String(40), default=None)
    certificate: Mapped[str | None] = mapped_column(default=None)
    # A change's new data address keeps its public part in `changes` and its secret here, sealed.
    data_secret: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EmbeddedDataset(Base):
    """The rows posted with a registration, as one Parquet file (gateway/dataplane/embedded.py).

    Kept in the gateway's own database, so that every gateway process sees it and a migration
    moves rows in the same transaction as the schema. `commitment` is the dataset commitment of
    the rows exactly as posted (gateway/resources/commitment.py), computed when they were stored.
    """

    __tablename__ = "embedded_datasets"

    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"), primary_key=True)
    rows: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    commitment: Mapped[str] = mapped_column(String(64))
    parquet: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded when read
    created_at: Mapped[datetime]


class CatalogueCode(Base):
    """The counter behind catalogue codes: one row per coded resource, never reused."""

    __tablename__ = "catalogue_codes"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"), unique=True)
    created_at: Mapped[datetime]


FieldKind = Literal["name", "phone", "id_card", "email", "text"]

DataAddress = Annotated[
    SqlAddress | HttpAddress | ObjectAddress | FilesAddress, Field(discriminator="type")
]


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=FIELD_NAME)
    description: str = Field("", max_length=1000, pattern=TEXT_PATTERN)
    personal: bool | None = Field(
        None,
        description="holds personal information (个人信息); null or omitted: not stated, the "
        "resource's personal_information applies; false: explicitly not personal",
    )
    sensitive: bool | None = Field(
        None,
        description="holds sensitive personal information (敏感个人信息); null or omitted: not "
        "stated, the resource's sensitive_personal_information applies; false: explicitly not",
    )
    kind: FieldKind | None = Field(
        None,
        description="what the field holds, which sets the shape a masked value keeps "
        "(specs/policy-input.md, Masking); omitted: inferred from the field's name",
    )
    grade: Grade | None = Field(None, description="this field's own grade; at most the resource's")
    level: Level | None = Field(None, description="sub-level of a 'general' field")


def protected_fields(
    fields: list[dict[str, Any]],
    *,
    personal_information: bool,
    sensitive_personal_information: bool,
) -> set[str]:
    """Return the names of the fields that hold (sensitive) personal information.

    The policy's rule (specs/policy-input.md, Masking), for checks made before any decision: a
    field's own flag when it states one, else the resource's; a resource flag that every field
    explicitly denies applies to every field (从严).
    """
    out: set[str] = set()
    for flag, on in (
        ("personal", personal_information),
        ("sensitive", sensitive_personal_information),
    ):
        all_deny = on and all(f.get(flag) is False for f in fields)
        out |= {
            f["name"]
            for f in fields
            if f.get(flag) is True or (on and (f.get(flag) is None or all_deny))
        }
    return out


def grade_rank(grade: str, level: str | None) -> tuple[int, int]:
    """Return a sortable rank: core > important > general L4 > L3 > L2 > L1 (GB/T 43697)."""
    major = {"general": 0, "important": 1, "core": 2}[grade]
    return (major, int(level[1]) if level else 0)


class ResourceDetails(BaseModel):
    """The rest of the registration record (DESIGN §3): source, business attributes, usage."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(
        "", max_length=500, pattern=TEXT_PATTERN, description="where the data comes from"
    )
    business_attributes: list[ShortText] = Field(default_factory=list, max_length=50)
    usage_permissions: list[ShortText] = Field(default_factory=list, max_length=50)
    security_measures: list[ShortText] = Field(default_factory=list, max_length=50)


class ResourceCreate(BaseModel):
    """A holder's registration of a data resource and (optionally) its rows."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    domain: str = Field(
        min_length=1, max_length=100, pattern=TEXT_PATTERN, description="industry domain"
    )
    grade: Grade
    level: Level | None = Field(None, description="sub-level, only for grade 'general'")
    personal_information: bool | None = Field(
        None,
        description="the resource holds personal information. true: every field that does not "
        "state `personal` itself holds it; omitted: derived from the fields (true when a field "
        "is flagged, and then the fields that state nothing are not personal)",
    )
    sensitive_personal_information: bool | None = Field(
        None,
        description="the resource holds sensitive personal information. true: every field that "
        "does not state `sensitive` itself holds it (and the resource is personal too); "
        "omitted: derived from the fields, like personal_information",
    )
    fields: list[FieldSpec] = Field(min_length=1, max_length=200)
    update_cycle: str = Field("static", max_length=40, pattern=TEXT_PATTERN)
    rows: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=100_000,
        description="small data posted with the registration, kept in the embedded store; "
        "values are JSON that RFC 8785 holds exactly: finite numbers, integers "
        "within ±(2**53 - 1), text without NUL or lone surrogates. Not with `data_address`",
    )
    data_address: DataAddress | None = Field(
        None,
        description="where the data lives, instead of `rows` (specs/dataplane.md): a table in "
        "the holder's database (sql), the merchant's endpoint (http), an object in S3 storage "
        "(object) or a file in the gateway's data folder (files). Its `secret` part is sealed "
        "at rest and never shown; the source is opened at registration and its columns must "
        "be the declared fields",
    )
    details: ResourceDetails = Field(default_factory=lambda: ResourceDetails())

    @model_validator(mode="after")
    def _consistent(self) -> "ResourceCreate":
        if self.grade == "general" and self.level is None:
            raise ValueError("grade 'general' needs a level: L1, L2, L3 or L4")
        if self.grade != "general" and self.level is not None:
            raise ValueError(f"grade {self.grade!r} has no sub-level; leave level out")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        if self.rows and self.data_address is not None:
            raise ValueError("give either rows (small data) or data_address, not both")
        known = set(names)
        for index, row in enumerate(self.rows):
            extra = set(row) - known
            if extra:
                raise ValueError(f"row {index} has fields not declared: {sorted(extra)[:10]}")
            check_json_value(row, f"row {index}")
        top = grade_rank(self.grade, self.level)
        for f in self.fields:
            if f.level is not None and f.grade != "general":
                raise ValueError(f"field {f.name!r}: only a 'general' field has a level")
            if f.grade is not None and grade_rank(f.grade, f.level) > top:
                raise ValueError(
                    f"field {f.name!r} is graded above the resource: a resource takes the "
                    "highest grade of its fields (就高)"
                )
        self._resolve_flags()
        return self

    def _resolve_flags(self) -> None:
        """Settle the resource-level flags, keeping "not stated" apart from "false" per field.

        A flag the holder states true applies to every field that states nothing (the policy
        sees those fields' flags as null, inherited). A flag not stated true is derived from the
        fields; when a field is flagged, the holder has named the fields that hold it, so the
        fields stating nothing are recorded as explicitly not holding it.
        """
        sensitive = self.sensitive_personal_information is True
        personal = self.personal_information is True or sensitive
        derived = {
            "sensitive": not sensitive and any(f.sensitive for f in self.fields),
            "personal": not personal and any(f.personal or f.sensitive for f in self.fields),
        }
        for flag, on in derived.items():
            if on:
                for f in self.fields:
                    # A sensitive field is personal too: it keeps inheriting the derived flag.
                    if getattr(f, flag) is None and not (flag == "personal" and f.sensitive):
                        setattr(f, flag, False)
        self.sensitive_personal_information = sensitive or derived["sensitive"]
        self.personal_information = personal or derived["personal"]


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
    data_address: dict[str, Any] = Field(
        description="where the data lives, without its secret part: a sql, http, object or "
        "files address, or {type: embedded, rows, sha256} for rows posted with the registration"
    )
    row_count: int | None = Field(
        description="rows of an embedded dataset; null for an external source (its data is "
        "live at the holder's and is not counted)"
    )
    details: ResourceDetails = Field(default_factory=lambda: ResourceDetails())
    status: str = Field(description="registering, coded, rejected or cancelled")
    code: str | None = Field(None, description="the catalogue code, once coded (stable)")
    version: int = Field(0, description="how many registrations have been coded")
    dataset_commitment: str = Field(
        description="embedded rows: HMAC-SHA-256 of the canonical rows keyed by the dataset's "
        "salt; an external source: HMAC-SHA-256 of the canonical public address and declared "
        "fields, same key (hex)"
    )
    commitment_scheme: str = Field(
        description=f"how the commitment is computed: {SCHEME} or {ADDRESS_SCHEME}"
    )
    dataset_salt: str | None = Field(
        None,
        description="the commitment's 256-bit key (hex), shown to the holder and auditors only, "
        "so that they can recompute the commitment from the rows; null for everyone else",
    )
    registration: "RegistrationRead | None" = Field(
        None, description="the open registration, or the one this call created"
    )
    created_at: datetime
    ledger_seq: int | None = None


RegistrationKind = Literal["change", "correction", "cancellation"]


class ResourceAmendment(BaseModel):
    """New values of a change or correction registration; what is left out stays as it is."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200, pattern=TEXT_PATTERN)
    domain: str | None = Field(None, min_length=1, max_length=100, pattern=TEXT_PATTERN)
    grade: Grade | None = None
    level: Level | None = None
    personal_information: bool | None = None
    sensitive_personal_information: bool | None = None
    fields: list[FieldSpec] | None = Field(None, min_length=1, max_length=200)
    update_cycle: str | None = Field(None, max_length=40, pattern=TEXT_PATTERN)
    details: ResourceDetails | None = None
    data_address: DataAddress | None = Field(
        None,
        description="a new address of the data (its secret sealed at rest, never shown); the "
        "source is opened when the change is applied for and its columns must be the fields",
    )


class RegistrationCreate(BaseModel):
    """A later registration of a coded resource (变更、更正、注销登记)."""

    model_config = ConfigDict(extra="forbid")
    kind: RegistrationKind
    reason: str = Field(min_length=1, max_length=1000, pattern=TEXT_PATTERN)
    changes: ResourceAmendment = Field(default_factory=lambda: ResourceAmendment())

    @model_validator(mode="after")
    def _changes_fit_kind(self) -> "RegistrationCreate":
        given = self.changes.model_dump(exclude_unset=True)
        if self.kind == "cancellation" and given:
            raise ValueError("a cancellation carries no changes")
        if self.kind != "cancellation" and not given:
            raise ValueError(f"a {self.kind} registration needs at least one change")
        return self


class Publicity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_seconds: int | None = Field(
        None,
        ge=0,
        le=366 * 86400,
        description="length of the objection window; default: the gateway's publicity_seconds",
    )


class Objection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, pattern=TEXT_PATTERN)


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, pattern=TEXT_PATTERN)


class RegistrationRead(BaseModel):
    id: str
    resource_id: str
    kind: str
    state: str
    allowed_actions: list[str]
    applicant_id: str
    changes: dict
    reason: str
    publicity_starts_at: datetime | None
    publicity_ends_at: datetime | None
    objections: list[dict]
    code: str | None
    created_at: datetime
    updated_at: datetime
    ledger_seq: int | None = None


class Certificate(BaseModel):
    """A registration certificate: a compact JWS (EdDSA, gateway key) and its decoded payload."""

    certificate: str = Field(description="compact JWS over the canonical payload (RFC 7515)")
    payload: dict
    kid: str


ResourceRead.model_rebuild()
