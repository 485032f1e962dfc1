"""The admin's CLI on the state folder: registration steps and participant suspension."""

import json

import pytest

from gateway.cli import main as dsgw
from tests.e2e.test_registration import GRID
from tests.e2e.world import build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _cli(settings, *args) -> int:
    return dsgw(
        [
            "--state",
            str(settings.state_dir),
            *args,
            "--database-url",
            settings.resolved_database_url,
        ]
    )


def test_the_admin_walks_a_registration_from_the_command_line(world, settings, capsys):
    applied = world.holder.call("POST", "/resources", json=GRID).json()
    reg = applied["registration"]["id"]
    assert _cli(settings, "registrations", "code", reg) == 1
    problem = json.loads(capsys.readouterr().err)
    assert problem["current_state"] == "applied"
    assert problem["allowed_actions"] == ["accept", "reject"]
    assert _cli(settings, "registrations", "accept", reg) == 0
    assert _cli(settings, "registrations", "review", reg) == 0
    assert _cli(settings, "registrations", "publicise", reg, "--window-seconds", "-1") == 2
    assert _cli(settings, "registrations", "publicise", reg, "--window-seconds", "0") == 0
    capsys.readouterr()
    assert _cli(settings, "registrations", "code", reg) == 0
    coded = json.loads(capsys.readouterr().out)
    assert coded["state"] == "coded" and coded["code"].startswith("DR-")
    resource = world.holder.call("GET", f"/resources/{applied['id']}").json()
    assert resource["status"] == "coded"


def test_the_admin_suspends_and_reinstates_from_the_command_line(world, settings, capsys, client):
    pid = world.consumer.id
    world.consumer.token()
    assert _cli(settings, "participants", "suspend", pid, "--reason", "audit") == 0
    response = world.consumer.call("GET", f"/participants/{pid}")
    assert response.status_code == 401
    assert _cli(settings, "participants", "suspend", pid, "--reason", "again") == 1
    assert json.loads(capsys.readouterr().err)["current_state"] == "suspended"
    assert _cli(settings, "participants", "reinstate", pid, "--reason", "done") == 0
    assert world.consumer.call("GET", f"/participants/{pid}").status_code == 200
