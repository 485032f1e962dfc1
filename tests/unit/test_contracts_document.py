"""The canonical contract document, its RFC 8785 bytes, its hash and its published JSON Schema."""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from contracts import (
    ContractError,
    Offer,
    canonical_bytes,
    contract_document,
    contract_hash,
)
from contracts.compute import ComputeTerms

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "specs" / "contract.schema.json").read_text()
)
START = datetime(2025, 3, 1, 8, 30, 0, 123456, tzinfo=UTC)


def make_doc(offer: Offer | None = None, **changes) -> dict:
    args = {
        "contract_id": "ctr_1",
        "offer_id": "off_1",
        "offer": offer or Offer(purposes=["research", "credit-scoring"], term="P30D"),
        "product_id": "prd_1",
        "provider": "91110000000000000X",
        "consumer": "91310000000000000Y",
        "purpose": "research",
        "not_before": START,
        "not_after": START + timedelta(days=30),
        "gateway": "gw_1",
    }
    return contract_document(**{**args, **changes})


FULL_OFFER = Offer(
    purposes=["research"],
    term="PT2S",
    quota_rows=100,
    quota_calls=3,
    fields=["name", "id_no"],
    region="any",
    onward_transfer=True,
    price_fen=500,
    lawful_basis_fields=["id_no"],
    lawful_basis="consent",
)


# A checker for the subset of JSON Schema 2020-12 the contract schema uses (no dependency is
# installed for it). It refuses any keyword it does not know, so it cannot skip a constraint.
_ANNOTATIONS = {"$schema", "title", "description", "format"}


def schema_errors(value, schema: dict, root: dict = SCHEMA, at: str = "$") -> list[str]:
    errors: list[str] = []
    for keyword, rule in schema.items():
        if keyword in _ANNOTATIONS | {"$defs", "properties"}:
            continue
        if keyword == "$ref":
            target = root
            for part in rule.removeprefix("#/").split("/"):
                target = target[part]
            errors += schema_errors(value, target, root, at)
        elif keyword == "type":
            kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
            if rule == "integer":
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif rule == "null":
                ok = value is None
            else:
                ok = isinstance(value, kinds[rule])
            if not ok:
                errors.append(f"{at}: expected {rule}, found {value!r}")
                return errors
        elif keyword == "const" and (value != rule or type(value) is not type(rule)):
            errors.append(f"{at}: expected {rule!r}, found {value!r}")
        elif keyword == "enum" and value not in rule:
            errors.append(f"{at}: expected one of {rule}, found {value!r}")
        elif keyword == "anyOf":
            if all(schema_errors(value, option, root, at) for option in rule):
                errors.append(f"{at}: matches none of anyOf, found {value!r}")
        elif keyword == "required":
            errors += [f"{at}: missing {k}" for k in rule if k not in value]
        elif keyword == "additionalProperties":
            assert rule is False
            errors += [f"{at}: unexpected {k}" for k in value if k not in schema["properties"]]
        elif keyword == "items":
            for i, item in enumerate(value):
                errors += schema_errors(item, rule, root, f"{at}[{i}]")
        elif keyword == "minItems" and len(value) < rule:
            errors.append(f"{at}: expected at least {rule} items")
        elif keyword == "maxItems" and len(value) > rule:
            errors.append(f"{at}: expected at most {rule} items")
        elif keyword == "uniqueItems" and len({json.dumps(v) for v in value}) != len(value):
            errors.append(f"{at}: expected unique items")
        elif keyword == "minLength" and len(value) < rule:
            errors.append(f"{at}: too short")
        elif keyword == "maxLength" and len(value) > rule:
            errors.append(f"{at}: too long")
        elif keyword == "pattern" and not re.search(rule, value):
            errors.append(f"{at}: {value!r} does not match {rule}")
        elif keyword == "minimum" and value < rule:
            errors.append(f"{at}: below {rule}")
        elif keyword == "maximum" and value > rule:
            errors.append(f"{at}: above {rule}")
        elif keyword not in {
            "$ref", "type", "const", "enum", "anyOf", "required", "additionalProperties",
            "items", "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern",
            "minimum", "maximum",
        }:  # fmt: skip
            raise AssertionError(f"schema keyword {keyword!r} at {at} is not checked")
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += schema_errors(value[name], sub, root, f"{at}.{name}")
    return errors


def test_document_names_type_version_parties_purpose_and_period():
    doc = make_doc()
    assert doc["type"] == "dsgw:UsageContract"
    assert doc["version"] == 1
    assert (doc["contract_id"], doc["offer_id"], doc["product_id"]) == ("ctr_1", "off_1", "prd_1")
    assert (doc["provider"], doc["consumer"], doc["gateway"]) == (
        "91110000000000000X",
        "91310000000000000Y",
        "gw_1",
    )
    assert doc["purpose"] == "research"
    assert doc["not_before"] == "2025-03-01T08:30:00.123456Z"
    assert doc["not_after"] == "2025-03-31T08:30:00.123456Z"


def test_document_carries_the_full_offer_terms_and_the_effective_terms():
    doc = make_doc(FULL_OFFER, not_after=START + timedelta(seconds=2))
    assert doc["offer"] == FULL_OFFER.model_dump(mode="json", exclude={"compute", "price"})
    assert doc["offer"]["term"] == "PT2S"
    assert doc["quotas"] == {"rows": 100, "calls": 3}
    assert doc["fields"] == ["name", "id_no"]
    assert (doc["region"], doc["onward_transfer"], doc["price_fen"]) == ("any", True, 500)
    assert doc["lawful_basis"] == {"basis": "consent", "fields": ["id_no"]}


def test_document_carries_the_offers_compute_terms_when_it_declares_them():
    terms = {"aggregates": ["count"], "columns": {"district": {"rule": "group_key"}}}
    offer = Offer(purposes=["research"], term="P30D", compute=ComputeTerms(**terms))
    assert make_doc(offer)["offer"]["compute"]["columns"]["district"]["rule"] == "group_key"
    assert "compute" not in make_doc()["offer"]


def test_document_carries_usage_prices_only_when_the_offer_declares_them():
    offer = Offer(purposes=["research"], term="P30D", price={"per_call_fen": 7})
    assert make_doc(offer)["offer"]["price"]["per_call_fen"] == 7
    assert "price" not in make_doc()["offer"]  # signed as before usage prices existed


def test_document_without_lawful_basis_fields_records_none():
    doc = make_doc()
    assert doc["lawful_basis"] is None
    assert doc["quotas"] == {"rows": None, "calls": None}
    assert doc["fields"] is None


def test_document_times_are_converted_to_utc_with_z():
    beijing = timezone(timedelta(hours=8))
    doc = make_doc(
        not_before=datetime(2025, 3, 1, 16, 30, tzinfo=beijing),
        not_after=datetime(2025, 3, 2, 16, 30, tzinfo=beijing),
    )
    assert doc["not_before"] == "2025-03-01T08:30:00.000000Z"
    assert doc["not_after"] == "2025-03-02T08:30:00.000000Z"


def test_document_refuses_naive_datetimes():
    with pytest.raises(ContractError, match="expected a timezone-aware datetime, found naive"):
        make_doc(not_before=datetime(2025, 3, 1))


def test_document_refuses_a_purpose_the_offer_does_not_name():
    with pytest.raises(
        ContractError, match=r"expected a purpose the offer names .*found 'marketing'"
    ):
        make_doc(purpose="marketing")


def test_document_refuses_a_period_that_ends_before_it_starts():
    with pytest.raises(ContractError, match="expected not_after later than not_before"):
        make_doc(not_after=START)


def test_document_refuses_a_period_longer_than_the_offer_term():
    with pytest.raises(ContractError, match="no longer than the offer's term P30D"):
        make_doc(not_after=START + timedelta(days=30, microseconds=1))


@pytest.mark.parametrize("name", ["contract_id", "offer_id", "product_id", "provider", "consumer"])
def test_document_refuses_empty_ids(name):
    with pytest.raises(ContractError, match=f"expected {name} to be a non-empty string"):
        make_doc(**{name: " "})


def test_canonical_bytes_are_rfc8785_sorted_and_compact():
    assert canonical_bytes({"b": 1, "a": [True, None, "é"], "c": {"z": 1, "y": 2}}) == (
        '{"a":[true,null,"é"],"b":1,"c":{"y":2,"z":1}}'.encode()
    )


def test_canonical_bytes_refuse_what_json_cannot_carry_exactly():
    with pytest.raises(ContractError, match="canonicalise"):
        canonical_bytes({"rows": 2**53})


def test_contract_hash_is_sha256_hex_of_canonical_bytes_regardless_of_key_order():
    doc = make_doc()
    reordered = dict(reversed(list(doc.items())))
    assert contract_hash(doc) == hashlib.sha256(canonical_bytes(doc)).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", contract_hash(doc))
    assert contract_hash(reordered) == contract_hash(doc)
    assert contract_hash(make_doc(purpose="credit-scoring")) != contract_hash(doc)


def test_document_survives_a_json_round_trip_with_the_same_hash():
    doc = make_doc(FULL_OFFER, not_after=START + timedelta(seconds=1))
    assert contract_hash(json.loads(json.dumps(doc))) == contract_hash(doc)


@pytest.mark.parametrize(
    "doc",
    [make_doc(), make_doc(FULL_OFFER, not_after=START + timedelta(seconds=2))],
    ids=["minimal-offer", "full-offer"],
)
def test_produced_documents_validate_against_the_published_schema(doc):
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema_errors(doc, SCHEMA) == []


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("surprise",), 1, "unexpected surprise"),
        (("not_after",), "2025-03-31T08:30:00Z", "does not match"),
        (("version",), 2, "expected 1"),
        (("price_fen",), -1, "below 0"),
        (("quotas", "rows"), 0, "matches none of anyOf"),
        (("offer", "term"), "P1Y", "does not match"),
        (("offer", "purposes"), [], "at least 1"),
        (("onward_transfer",), "no", "expected boolean"),
    ],
)
def test_schema_check_refuses_documents_that_break_it(path, value, error):
    doc = make_doc()
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert any(error in e for e in schema_errors(doc, SCHEMA))


def test_schema_offer_properties_match_the_offer_model():
    assert set(SCHEMA["$defs"]["offer"]["properties"]) == set(Offer.model_fields)
    # compute and price are omitted when null, and transfer_start when it is the default
    # (consumer), so documents without them sign as they always did.
    assert set(SCHEMA["$defs"]["offer"]["required"]) == set(Offer.model_fields) - {
        "compute",
        "price",
        "transfer_start",
    }
    assert set(SCHEMA["required"]) == set(make_doc())


def test_the_default_transfer_start_is_left_out_so_documents_sign_as_before():
    plain = make_doc()
    assert "transfer_start" not in plain["offer"]
    explicit = make_doc(Offer.model_validate({**plain["offer"], "transfer_start": "consumer"}))
    assert contract_hash(explicit) == contract_hash(plain)
    started = make_doc(Offer.model_validate({**plain["offer"], "transfer_start": "provider"}))
    assert started["offer"]["transfer_start"] == "provider"
    assert schema_errors(started, SCHEMA) == []
