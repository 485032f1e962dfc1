"""Offers: the usage terms a product carries, and their ODRL 2.2 form for the catalogue."""

from collections import Counter
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from contracts._duration import (
    DURATION_PATTERN,
    MAX_DURATION,
    format_duration,
    parse_duration,
    signed_duration,
)
from contracts.compute import ComputeTerms

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
# Terms ODRL 2.2 does not define (a row quota, a field restriction) are written as full IRIs in
# this namespace, and the policy declares it as its ODRL profile. Replace with the deployment's own.
DSGW_NS = "https://dsgw.example/odrl#"
DSGW_PROFILE = "https://dsgw.example/odrl"
# ODRL's own spatial example names a country by its Wikidata IRI; Q148 is the PRC.
DOMESTIC_SPATIAL = "https://www.wikidata.org/wiki/Q148"
# The unit of a payAmount, as in ODRL's own compensate example (which uses dbpedia's Euro).
CURRENCY_UNIT = "http://dbpedia.org/resource/Renminbi"

Purpose = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
]
# A field of a resource: a short identifier (the gateway's resources use the same grammar).
FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
]
# RFC 8785 (and I-JSON, RFC 7493) only carries integers up to 2**53 - 1 exactly.
MAX_SAFE_INTEGER = 2**53 - 1
PositiveInt = Annotated[StrictInt, Field(gt=0, le=MAX_SAFE_INTEGER)]


FenAmount = Annotated[StrictInt, Field(ge=0, le=MAX_SAFE_INTEGER)]
# What a usage price is per: the metric it counts and the quantity one unit price is for.
PriceMetric = Literal["calls", "rows", "bytes", "queries"]
PER_UNIT: dict[str, int] = {"calls": 1, "rows": 1000, "bytes": 1_000_000, "queries": 1}


class PriceBand(BaseModel):
    """One band of a tiered price: the quantity it reaches to (null: no end), at its rate."""

    model_config = ConfigDict(extra="forbid")
    up_to: PositiveInt | None = Field(
        description="the period's quantity (in the metric's own unit: calls, rows, bytes, "
        "queries) this band ends at, inclusive; null for the last band"
    )
    unit_fen: FenAmount = Field(
        description="fen per unit: per call, per 1,000 rows, per MB (10^6 bytes), per query"
    )


class PriceTiers(BaseModel):
    """A graduated price on one metric: each band's quantity is charged at that band's rate."""

    model_config = ConfigDict(extra="forbid")
    metric: PriceMetric
    bands: list[PriceBand] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _bands_ascend_to_no_end(self) -> "PriceTiers":
        ends = [band.up_to for band in self.bands]
        if ends[-1] is not None:
            raise ValueError(
                f"expected the last band to have no end (up_to null), found {ends[-1]}"
            )
        bounded = ends[:-1]
        if any(end is None for end in bounded) or any(
            a >= b for a, b in zip(bounded, bounded[1:], strict=False)
        ):
            raise ValueError(
                f"expected strictly ascending band ends with only the last one null, found {ends}"
            )
        return self


class Price(BaseModel):
    """Usage prices of an offer (specs/settlement.md), in integer fen; the flat price per
    contract is the offer's `price_fen`. Every rate is within the authorisation's fee cap."""

    model_config = ConfigDict(extra="forbid")
    per_call_fen: FenAmount = 0
    per_1000_rows_fen: FenAmount = 0
    per_mb_fen: FenAmount = Field(0, description="fen per MB: 10^6 bytes delivered")
    per_query_fen: FenAmount = Field(0, description="fen per compute query answered")
    tiers: PriceTiers | None = None

    def rates(self) -> list[int]:
        """Return every rate this price states (the flat price not included)."""
        bands = [band.unit_fen for band in self.tiers.bands] if self.tiers is not None else []
        return [
            self.per_call_fen,
            self.per_1000_rows_fen,
            self.per_mb_fen,
            self.per_query_fen,
            *bands,
        ]


def _unique(values: list[str] | None, what: str) -> list[str] | None:
    if values is not None:
        repeated = sorted(v for v, n in Counter(values).items() if n > 1)
        if repeated:
            raise ValueError(f"expected each {what} once, found repeated {repeated}")
    return values


class Offer(BaseModel):
    """Usage terms a consumer can request: purposes, term, quotas, fields, region, price."""

    model_config = ConfigDict(extra="forbid")

    purposes: list[Purpose] = Field(min_length=1, max_length=20)
    term: timedelta = Field(
        description="ISO 8601 duration in weeks, days, hours, minutes, seconds: 'P30D', 'PT2S'",
        json_schema_extra={"pattern": DURATION_PATTERN},
    )
    quota_rows: PositiveInt | None = None
    quota_calls: PositiveInt | None = None
    fields: list[FieldName] | None = Field(None, min_length=1, max_length=200)
    region: Literal["domestic", "any"] = "domestic"
    onward_transfer: StrictBool = False
    price_fen: Annotated[StrictInt, Field(ge=0, le=MAX_SAFE_INTEGER)] = Field(
        0, description="flat price per contract, integer fen, charged in the period it is finalised"
    )
    price: Price | None = Field(
        None, description="usage prices: per call, per 1,000 rows, per MB, per query, tiers"
    )
    termination: Literal["either", "provider", "none"] = Field(
        "either",
        description="who may terminate a FINALIZED contract: either party, the provider, nobody",
    )
    lawful_basis_fields: list[FieldName] = Field(default_factory=list, max_length=200)
    lawful_basis: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
        | None
    ) = None
    compute: ComputeTerms | None = Field(
        None,
        description="the questions compute delivery answers (specs/compute.md); a product with "
        "compute delivery gets defaults derived from its resource when its offer declares none",
    )
    transfer_start: Literal["consumer", "provider"] = Field(
        "consumer",
        description="who starts a transfer under the contract: consumer (default: decided at "
        "once when the consumer requests it, STARTED or refused) or provider (it stays "
        "REQUESTED until the merchant starts it, decided by OPA then)",
    )

    @field_validator("term", mode="before")
    @classmethod
    def _term_from_iso8601(cls, value: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        if isinstance(value, str):
            return parse_duration(value)
        raise ValueError(f"expected an ISO 8601 duration string, found {type(value).__name__}")

    @field_validator("term")
    @classmethod
    def _term_is_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"expected a term longer than zero, found {signed_duration(value)}")
        if value > MAX_DURATION:
            raise ValueError(
                f"expected a term of at most {format_duration(MAX_DURATION)} (a century), "
                f"found {format_duration(value)}"
            )
        return value

    @field_validator("purposes", "fields", "lawful_basis_fields")
    @classmethod
    def _no_repeats(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return _unique(value, info.field_name.removesuffix("s"))

    @model_validator(mode="after")
    def _lawful_basis_names_its_fields(self) -> "Offer":
        if self.lawful_basis_fields and self.lawful_basis is None:
            raise ValueError(
                f"expected a lawful_basis for lawful_basis_fields {self.lawful_basis_fields}, "
                "found none"
            )
        if self.lawful_basis is not None and not self.lawful_basis_fields:
            raise ValueError(
                f"expected lawful_basis_fields naming the personal fields that lawful_basis "
                f"{self.lawful_basis!r} covers, found none"
            )
        return self

    def rates(self) -> list[int]:
        """Return every price the offer states: the flat one and each usage rate."""
        return [self.price_fen, *(self.price.rates() if self.price is not None else [])]

    @field_serializer("term")
    def _term_to_iso8601(self, value: timedelta) -> str:
        return format_duration(value)

    @model_serializer(mode="wrap")
    def _default_start_unwritten(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The default start is left out: offers and contract documents without it read (and
        # hash) exactly as they did before the setting existed.
        dumped = handler(self)
        if isinstance(dumped, dict) and dumped.get("transfer_start") == "consumer":
            dumped.pop("transfer_start")
        return dumped


def _constraint(left: str, operator: str, right: Any, **extra: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right, **extra}


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def to_odrl(offer: Offer, *, offer_id: str, target: str, assigner: str) -> dict[str, Any]:
    """Return the offer as an ODRL 2.2 JSON-LD Offer policy."""
    purposes = offer.purposes
    constraints = [
        _constraint("purpose", "eq", purposes[0])
        if len(purposes) == 1
        else _constraint("purpose", "isAnyOf", list(purposes)),
        _constraint(
            "elapsedTime",
            "lteq",
            {"@value": format_duration(offer.term), "@type": "xsd:duration"},
        ),
    ]
    if offer.quota_calls is not None:
        constraints.append(_constraint("count", "lteq", offer.quota_calls))
    if offer.quota_rows is not None:
        constraints.append(_constraint(DSGW_NS + "rowCount", "lteq", offer.quota_rows))
    if offer.fields is not None:
        constraints.append(_constraint(DSGW_NS + "field", "isAnyOf", list(offer.fields)))
    if offer.region == "domestic":
        constraints.append(
            _constraint("spatial", "eq", {"@value": DOMESTIC_SPATIAL, "@type": "xsd:anyURI"})
        )
    permission: dict[str, Any] = {
        "target": target,
        "assigner": assigner,
        "action": "use",
        "constraint": constraints,
    }
    if offer.price_fen > 0:
        permission["duty"] = [
            {
                "action": [
                    {
                        "rdf:value": {"@id": "odrl:compensate"},
                        "refinement": [
                            _constraint(
                                "payAmount",
                                "eq",
                                {"@value": _yuan(offer.price_fen), "@type": "xsd:decimal"},
                                unit=CURRENCY_UNIT,
                            )
                        ],
                    }
                ],
                "compensatedParty": assigner,
            }
        ]
    policy: dict[str, Any] = {
        "@context": ODRL_CONTEXT,
        "@type": "Offer",
        "uid": offer_id,
        "assigner": assigner,
        "target": target,
    }
    if offer.quota_rows is not None or offer.fields is not None:
        policy["profile"] = DSGW_PROFILE
    policy["permission"] = [permission]
    if not offer.onward_transfer:
        policy["prohibition"] = [{"target": target, "assigner": assigner, "action": "distribute"}]
    return policy
