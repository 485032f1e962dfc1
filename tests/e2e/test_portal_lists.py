"""The lists the portal's holder, merchant and admin pages read: resources, authorisations,
participants, each showing a participant only what it may see."""

import pytest

from tests.e2e.world import build_world, register_party


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _ids(response, status: int = 200) -> list[str]:
    assert response.status_code == status, response.text
    return [x["id"] for x in response.json()]


def test_a_holder_lists_its_own_resources_with_their_registration_state_and_no_one_elses(world):
    other = register_party(world.admin, "other holder", ["holder"])
    mine = world.holder.call("GET", "/resources")
    assert _ids(mine) == [world.resource["id"], world.core_resource["id"]]
    first = mine.json()[0]
    assert first["status"] == "coded" and first["code"] and first["dataset_salt"]
    assert _ids(other.call("GET", "/resources")) == []
    # the merchant holds none, though it may read each one it is authorised for
    assert _ids(world.merchant.call("GET", "/resources")) == []
    audited = world.auditor.call("GET", "/resources")
    assert set(_ids(audited)) >= {world.resource["id"], world.core_resource["id"]}
    assert _ids(world.holder.call("GET", "/resources?limit=1&offset=1")) == [
        world.core_resource["id"]
    ]
    assert world.holder.call("GET", "/resources?limit=0").status_code == 422


def test_authorisations_are_listed_to_their_holder_and_operator_only(world):
    granted = world.authorisation["id"]
    assert _ids(world.holder.call("GET", "/authorisations")) == [granted]
    listed = world.merchant.call("GET", "/authorisations")
    assert _ids(listed) == [granted]
    assert listed.json()[0]["fee_cap_fen"] == 500_000
    assert listed.json()[0]["allowed_actions"] == ["expire", "revoke"]
    assert _ids(world.consumer.call("GET", "/authorisations")) == []
    assert granted in _ids(world.admin.call("GET", "/authorisations"))


def test_the_admin_lists_participants_by_status_and_others_are_refused(world):
    everyone = _ids(world.admin.call("GET", "/participants"))
    assert {world.holder.id, world.merchant.id, world.consumer.id} <= set(everyone)
    assert everyone.index(world.auditor.id) < everyone.index(world.holder.id)  # newest first
    suspended = world.admin.call(
        "POST", f"/participants/{world.consumer.id}/suspend", json={"reason": "test"}
    )
    assert suspended.status_code == 200, suspended.text
    assert _ids(world.admin.call("GET", "/participants?status=suspended")) == [world.consumer.id]
    assert world.consumer.id not in _ids(world.auditor.call("GET", "/participants?status=active"))
    refused = world.holder.call("GET", "/participants")
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:dsgw:problem:forbidden"
    assert world.admin.call("GET", "/participants?status=pending").status_code == 422


def _every_page(party, path: str, size: int) -> list[dict]:
    """Return every item of a list fetched `size` at a time, as the portal does."""
    items: list[dict] = []
    for _ in range(100):  # a route that ignored `offset` would never end
        joiner = "&" if "?" in path else "?"
        page = party.call("GET", f"{path}{joiner}offset={len(items)}&limit={size}")
        assert page.status_code == 200, page.text
        items += page.json()
        if len(page.json()) < size:
            break
    return items


def test_registrations_page_by_offset_and_the_pages_add_up_to_the_list(world):
    every = world.admin.call("GET", "/registrations").json()
    assert len(every) >= 2
    assert _every_page(world.admin, "/registrations", 1) == every
    assert _ids(world.admin.call("GET", "/registrations?offset=1&limit=1")) == [every[1]["id"]]
    assert world.admin.call("GET", "/registrations?offset=-1").status_code == 422


def test_checkpoints_page_by_offset_oldest_first_and_the_pages_add_up(world):
    for n in range(3):
        register_party(world.admin, f"party {n}", ["consumer"])  # a new entry to checkpoint
        cut = world.auditor.call("POST", "/ledger/checkpoints")
        assert cut.status_code == 201, cut.text
    every = world.auditor.call("GET", "/ledger/checkpoints").json()
    assert len(every) >= 3
    sizes = [cp["size"] for cp in every]
    assert sizes == sorted(sizes)
    assert _every_page(world.auditor, "/ledger/checkpoints", 2) == every
    second = world.auditor.call("GET", "/ledger/checkpoints?offset=1&limit=1").json()
    assert second == [every[1]]
    for bad in ("offset=-1", "offset=x", "limit=0", "limit=1001"):
        refused = world.auditor.call("GET", f"/ledger/checkpoints?{bad}")
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].startswith("urn:dsgw:problem:")
