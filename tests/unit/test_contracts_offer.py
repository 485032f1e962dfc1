"""Offers: validation of the usage terms, ISO 8601 terms, and the ODRL 2.2 form."""

import re
from datetime import timedelta

import pytest
from pydantic import ValidationError

from contracts import Offer, to_odrl
from contracts._duration import DURATION_PATTERN, format_duration, parse_duration

BASE = {"purposes": ["research"], "term": "P30D"}


def offer(**changes) -> Offer:
    return Offer.model_validate({**BASE, **changes})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quota_rows": -1}, "quota_rows"),
        ({"quota_rows": 0}, "quota_rows"),
        ({"quota_calls": -5}, "quota_calls"),
        ({"quota_calls": True}, "quota_calls"),
        ({"quota_rows": 2**53}, "quota_rows"),
        ({"purposes": []}, "purposes"),
        ({"purposes": [""]}, "purposes.0"),
        ({"purposes": ["Credit Scoring"]}, "purposes.0"),
        ({"purposes": ["research", "research"]}, "purposes"),
        ({"term": "PT0S"}, "term"),
        ({"term": "P0D"}, "term"),
        ({"term": timedelta(seconds=-1)}, "term"),
        ({"term": "P1Y"}, "term"),
        ({"term": "P1M"}, "term"),
        ({"term": "30 days"}, "term"),
        ({"term": 2592000}, "term"),
        ({"fields": []}, "fields"),
        ({"fields": ["name", "name"]}, "fields"),
        ({"price_fen": -1}, "price_fen"),
        ({"price_fen": 1.5}, "price_fen"),
        ({"region": "abroad"}, "region"),
        ({"onward_transfer": "yes"}, "onward_transfer"),
        ({"lawful_basis": "   ", "lawful_basis_fields": ["id_no"]}, "lawful_basis"),
        ({"delivery_modes": ["api"]}, "delivery_modes"),
        ({"actions": ["use"]}, "actions"),
    ],
)
def test_offer_rejects_bad_input_at_the_offending_field(changes, field):
    with pytest.raises(ValidationError) as caught:
        offer(**changes)
    assert [".".join(map(str, e["loc"])) for e in caught.value.errors()] == [field]


def test_offer_requires_a_lawful_basis_for_lawful_basis_fields():
    with pytest.raises(ValidationError, match=r"expected a lawful_basis for .*'id_no'.*found none"):
        offer(lawful_basis_fields=["id_no"])


def test_offer_refuses_a_lawful_basis_that_names_no_fields():
    with pytest.raises(ValidationError, match="expected lawful_basis_fields naming"):
        offer(lawful_basis="consent of the data subject")


def test_offer_defaults_are_domestic_no_onward_transfer_free_and_unrestricted():
    o = offer()
    assert (o.region, o.onward_transfer, o.price_fen) == ("domestic", False, 0)
    assert (o.quota_rows, o.quota_calls, o.fields) == (None, None, None)
    assert (o.lawful_basis_fields, o.lawful_basis) == ([], None)


def test_offer_accepts_full_terms():
    o = offer(
        purposes=["credit-scoring", "research"],
        term="PT2S",
        quota_rows=1000,
        quota_calls=10,
        fields=["name", "id_no"],
        region="any",
        onward_transfer=True,
        price_fen=12345,
        lawful_basis_fields=["id_no"],
        lawful_basis="  contract with the data subject  ",
    )
    assert o.term == timedelta(seconds=2)
    assert o.lawful_basis == "contract with the data subject"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("PT2S", timedelta(seconds=2)),
        ("P30D", timedelta(days=30)),
        ("P1DT2H3.5S", timedelta(days=1, hours=2, seconds=3.5)),
        ("PT1H30M", timedelta(minutes=90)),
        ("PT0.000001S", timedelta(microseconds=1)),
        ("P400D", timedelta(days=400)),
    ],
)
def test_term_round_trips_as_iso8601(text, value):
    o = offer(term=text)
    assert o.term == value
    assert o.model_dump(mode="json")["term"] == text
    assert o.model_dump()["term"] == text
    assert Offer.model_validate_json(o.model_dump_json()) == o
    assert offer(term=value).model_dump(mode="json")["term"] == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("P2W", "P14D"), ("PT90M", "PT1H30M"), ("PT48H", "P2D"), ("PT2.50S", "PT2.5S")],
)
def test_term_is_written_back_in_one_canonical_form(text, canonical):
    assert offer(term=text).model_dump(mode="json")["term"] == canonical


def test_term_json_schema_pattern_agrees_with_the_parser():
    pattern = re.compile(Offer.model_json_schema()["properties"]["term"]["pattern"])
    samples = ["P30D", "PT2S", "P2W", "P1DT2H3.5S", "PT0.5S", "P1Y", "P1M", "PT", "P", "P1DT",
               "P1W2D", "PT1.1234567S", "p1d", "-P1D", "P1D "]  # fmt: skip
    for sample in samples:
        try:
            parse_duration(sample)
            parsed = True
        except ValueError:
            parsed = False
        assert bool(pattern.search(sample)) is parsed, sample
    assert pattern.pattern == DURATION_PATTERN


def test_format_duration_refuses_zero():
    with pytest.raises(ValueError, match="positive"):
        format_duration(timedelta(0))


ODRL = {"offer_id": "urn:offer:1", "target": "urn:product:1", "assigner": "urn:participant:m"}


def constraints(policy: dict) -> dict[str, dict]:
    return {c["leftOperand"]: c for c in policy["permission"][0]["constraint"]}


def test_odrl_offer_has_context_type_uid_assigner_and_use_permission():
    policy = to_odrl(offer(), **ODRL)
    assert policy["@context"] == "http://www.w3.org/ns/odrl.jsonld"
    assert policy["@type"] == "Offer"
    assert (policy["uid"], policy["assigner"], policy["target"]) == (
        "urn:offer:1",
        "urn:participant:m",
        "urn:product:1",
    )
    [permission] = policy["permission"]
    assert permission["action"] == "use"
    assert permission["target"] == "urn:product:1"


def test_odrl_single_purpose_is_an_eq_constraint():
    assert constraints(to_odrl(offer(), **ODRL))["purpose"] == {
        "leftOperand": "purpose",
        "operator": "eq",
        "rightOperand": "research",
    }


def test_odrl_several_purposes_are_an_is_any_of_constraint():
    policy = to_odrl(offer(purposes=["research", "credit-scoring"]), **ODRL)
    assert constraints(policy)["purpose"] == {
        "leftOperand": "purpose",
        "operator": "isAnyOf",
        "rightOperand": ["research", "credit-scoring"],
    }


def test_odrl_prohibits_distribute_unless_onward_transfer_is_allowed():
    banned = to_odrl(offer(), **ODRL)
    assert banned["prohibition"] == [
        {"target": "urn:product:1", "assigner": "urn:participant:m", "action": "distribute"}
    ]
    assert "prohibition" not in to_odrl(offer(onward_transfer=True), **ODRL)


def test_odrl_term_is_an_elapsed_time_xsd_duration():
    assert constraints(to_odrl(offer(term="PT2S"), **ODRL))["elapsedTime"] == {
        "leftOperand": "elapsedTime",
        "operator": "lteq",
        "rightOperand": {"@value": "PT2S", "@type": "xsd:duration"},
    }


def test_odrl_call_quota_is_a_count_constraint_and_absent_without_quota():
    assert constraints(to_odrl(offer(quota_calls=7), **ODRL))["count"]["rightOperand"] == 7
    assert "count" not in constraints(to_odrl(offer(), **ODRL))


def test_odrl_domestic_region_is_a_spatial_constraint_and_any_has_none():
    spatial = constraints(to_odrl(offer(), **ODRL))["spatial"]
    assert spatial["operator"] == "eq"
    assert spatial["rightOperand"]["@type"] == "xsd:anyURI"
    assert "spatial" not in constraints(to_odrl(offer(region="any"), **ODRL))


def test_odrl_terms_outside_odrl_are_profile_iris_and_declare_the_profile():
    plain = to_odrl(offer(), **ODRL)
    assert "profile" not in plain
    policy = to_odrl(offer(quota_rows=500, fields=["name"]), **ODRL)
    extra = {k: c for k, c in constraints(policy).items() if k.startswith(policy["profile"])}
    assert sorted(c["rightOperand"] for c in extra.values() if c["operator"] == "lteq") == [500]
    assert [c["rightOperand"] for c in extra.values() if c["operator"] == "isAnyOf"] == [["name"]]


def test_odrl_price_is_a_compensate_duty_in_yuan_and_free_offers_have_none():
    policy = to_odrl(offer(price_fen=12305), **ODRL)
    [duty] = policy["permission"][0]["duty"]
    [action] = duty["action"]
    assert action["rdf:value"] == {"@id": "odrl:compensate"}
    [amount] = action["refinement"]
    assert amount["leftOperand"] == "payAmount"
    assert amount["rightOperand"] == {"@value": "123.05", "@type": "xsd:decimal"}
    assert duty["compensatedParty"] == "urn:participant:m"
    assert "duty" not in to_odrl(offer(), **ODRL)["permission"][0]
