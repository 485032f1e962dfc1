"""A registration keeps "not stated" apart from "explicitly false" for personal flags."""

from gateway.resources.models import Resource, ResourceCreate, protected_fields
from gateway.resources.service import _amended


def _create(fields: list[dict], **flags) -> ResourceCreate:
    return ResourceCreate(name="r", domain="d", grade="general", level="L2", fields=fields, **flags)


def test_a_stated_resource_flag_leaves_unflagged_fields_to_inherit_it():
    body = _create(
        [{"name": "patient"}, {"name": "ward", "sensitive": False}],
        sensitive_personal_information=True,
    )
    assert body.sensitive_personal_information is True
    assert body.personal_information is True  # sensitive personal information is personal
    assert [(f.personal, f.sensitive) for f in body.fields] == [(None, None), (None, False)]


def test_an_unstated_resource_flag_is_derived_and_the_flagged_fields_are_the_ones():
    body = _create(
        [
            {"name": "name", "personal": True},
            {"name": "id_card", "sensitive": True},
            {"name": "district"},
        ]
    )
    assert body.personal_information is True and body.sensitive_personal_information is True
    assert [(f.personal, f.sensitive) for f in body.fields] == [
        (True, False),
        (None, True),  # a sensitive field keeps inheriting personal
        (False, False),
    ]


def test_no_flag_anywhere_stays_not_stated_and_not_personal():
    body = _create([{"name": "station"}])
    assert body.personal_information is False and body.sensitive_personal_information is False
    assert (body.fields[0].personal, body.fields[0].sensitive) == (None, None)


def test_protected_fields_follow_the_policys_rule():
    fields = [{"name": "a"}, {"name": "b", "personal": False}, {"name": "c", "sensitive": True}]
    assert protected_fields(
        fields, personal_information=True, sensitive_personal_information=False
    ) == {"a", "c"}
    assert protected_fields(
        fields, personal_information=False, sensitive_personal_information=False
    ) == {"c"}
    # A resource flag every field denies applies to every field (从严).
    denied = [{"name": "a", "sensitive": False}, {"name": "b", "sensitive": False}]
    assert protected_fields(
        denied, personal_information=False, sensitive_personal_information=True
    ) == {"a", "b"}


def test_a_change_of_the_field_list_derives_the_resource_flags_again():
    derived = _create([{"name": "name", "personal": True}, {"name": "district"}])
    resource = Resource(
        name="r",
        domain="d",
        grade="general",
        level="L2",
        personal_information=derived.personal_information,
        sensitive_personal_information=derived.sensitive_personal_information,
        fields=[f.model_dump(exclude_none=True) for f in derived.fields],
        update_cycle="static",
        details={},
    )
    # The new list flags nothing: the resource is no longer personal, nothing inherits.
    amended = _amended(resource, {"fields": [{"name": "name"}, {"name": "district"}]})
    assert amended.personal_information is False
    assert [f.personal for f in amended.fields] == [None, None]
    # Stating the flag in the same change makes every unflagged field inherit it.
    stated = _amended(
        resource, {"fields": [{"name": "name"}, {"name": "district"}], "personal_information": True}
    )
    assert stated.personal_information is True
    assert [f.personal for f in stated.fields] == [None, None]
    # A change that leaves the fields alone keeps them as recorded.
    renamed = _amended(resource, {"name": "renamed"})
    assert [f.personal for f in renamed.fields] == [True, False]
