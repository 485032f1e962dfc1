"""Masking that hides: a resource-level personal or sensitive flag reaches every field that does
not state its own, over api and file alike, and a masked value keeps only its kind's shape."""

import json

import pytest

from ledger import store as ledger_store
from tests.e2e.world import OFFER, build_world

# The review's case: a resource flagged sensitive whose fields carry no flag of their own.
PATIENTS = [
    {"patient": "王小明", "diagnosis": "HIV positive", "ward": "east"},
    {"patient": "欧阳娜娜", "diagnosis": "hepatitis B", "ward": "west"},
]


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _entry(gateway, seq: int):
    with gateway.engine.connect() as conn:
        return ledger_store.get_entry(conn, seq)


def _clinic(world, *, fields: list[dict], offer: dict | None = None, **flags) -> dict:
    resource = world.add_resource(
        name="clinic visits",
        domain="health",
        grade="general",
        level="L2",
        sensitive_personal_information=True,
        fields=fields,
        rows=PATIENTS,
        **flags,
    )
    return world.publish(
        resource=resource,
        offers=[offer or OFFER],
        name="clinic visits",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["api", "file"],
    )


UNFLAGGED = [{"name": "patient"}, {"name": "diagnosis"}, {"name": "ward"}]


def test_sensitive_resource_without_field_flags_is_masked_over_api(world, gateway):
    product = _clinic(world, fields=UNFLAGGED)
    contract = world.contract(product["offers"][0]["id"])
    response = world.pull(contract["id"], fields=["patient", "diagnosis"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["masked"] == ["diagnosis", "patient"]
    rows = [{k: v for k, v in r.items() if k != "_watermark"} for r in body["rows"]]
    # Neither field names a kind: both are free text, fully replaced.
    assert rows == [{"patient": "***", "diagnosis": "***"}] * 2
    data = _entry(gateway, body["receipt"]["seq"]).data
    assert data["masked"] == ["diagnosis", "patient"]
    assert data["exposure"]["sensitive_personal_information"] is False  # nothing leaves in clear
    assert data["exposure"]["lowered"] == ["field(s) diagnosis, patient masked"]


def test_sensitive_resource_without_field_flags_is_masked_in_the_file(world):
    product = _clinic(world, fields=UNFLAGGED)
    contract = world.contract(product["offers"][0]["id"])
    response = world.pull(contract["id"], delivery="file", fields=["patient", "diagnosis"])
    assert response.status_code == 200, response.text
    content = response.json()["file"]["content"]
    assert "王小明" not in content and "HIV" not in content
    lines = [json.loads(line) for line in content.splitlines()]
    assert [{k: v for k, v in r.items() if k != "_watermark"} for r in lines] == [
        {"patient": "***", "diagnosis": "***"}
    ] * 2


def test_declared_kind_sets_the_shape_and_a_field_stating_false_opts_out(world):
    fields = [
        {"name": "patient", "kind": "name"},
        {"name": "diagnosis"},
        {"name": "ward", "personal": False, "sensitive": False},
    ]
    product = _clinic(world, fields=fields)
    contract = world.contract(product["offers"][0]["id"])
    body = world.pull(contract["id"]).json()
    assert body["masked"] == ["diagnosis", "patient"]
    assert [(r["patient"], r["diagnosis"], r["ward"]) for r in body["rows"]] == [
        ("王**", "***", "east"),  # a name keeps its surname only; ward opted out: in clear
        ("欧**", "***", "west"),
    ]


def test_registration_keeps_not_stated_apart_from_explicitly_false(world):
    stated = world.add_resource(
        name="stated",
        domain="health",
        grade="general",
        level="L2",
        personal_information=True,
        fields=[{"name": "patient"}, {"name": "ward", "personal": False}],
    )
    assert stated["personal_information"] is True
    assert [(f["personal"], f["sensitive"]) for f in stated["fields"]] == [
        (None, None),  # inherits the resource's flag
        (False, None),  # said so explicitly
    ]
    # No resource flag stated: derived from the fields, which then name the protected ones.
    derived = world.add_resource(
        name="derived",
        domain="health",
        grade="general",
        level="L2",
        fields=[{"name": "patient", "personal": True}, {"name": "ward"}],
    )
    assert derived["personal_information"] is True
    assert [f["personal"] for f in derived["fields"]] == [True, False]


def test_a_lawful_basis_may_name_an_inherited_field_and_unmasks_it_only(world):
    product = _clinic(
        world,
        fields=UNFLAGGED,
        offer={
            **OFFER,
            "lawful_basis_fields": ["diagnosis"],
            "lawful_basis": "patient consent recorded by the clinic",
        },
    )
    contract = world.contract(product["offers"][0]["id"])
    body = world.pull(contract["id"], fields=["patient", "diagnosis"]).json()
    assert body["masked"] == ["patient"]
    assert [r["diagnosis"] for r in body["rows"]] == ["HIV positive", "hepatitis B"]


def test_declared_phone_and_id_card_keep_no_more_than_their_shape(world):
    resource = world.add_resource(
        name="contacts",
        domain="finance",
        grade="general",
        level="L2",
        personal_information=True,
        fields=[
            {"name": "contact", "kind": "phone"},
            {"name": "document", "kind": "id_card"},
            {"name": "mobile"},  # undeclared: the name says phone
        ],
        rows=[
            {"contact": "13812345678", "document": "110101199003074512", "mobile": "13987654321"}
        ],
    )
    product = world.publish(
        resource=resource, offers=[OFFER], authorisation_id=resource["authorisation_id"]
    )
    contract = world.contract(product["offers"][0]["id"])
    row = world.pull(contract["id"]).json()["rows"][0]
    assert (row["contact"], row["document"], row["mobile"]) == (
        "138****5678",
        "1" + "*" * 16 + "2",
        "139****4321",
    )
