"""`dsgw catalogue`, `dsgw product …` and `dsgw contract …` against the gateway's API."""

import json

import pytest

from gateway.cli import main
from gateway.products import cli as lifecycle_cli
from tests.e2e.world import OFFER, build_world


@pytest.fixture
def world(client, settings, monkeypatch):
    monkeypatch.setattr(lifecycle_cli, "client_factory", lambda **_: client)
    return build_world(client, settings.state_dir)


def _key_file(tmp_path, party) -> str:
    path = tmp_path / f"{party.id}.jwk"
    path.write_text(json.dumps(party.key.private_jwk()))
    return str(path)


def test_catalogue_command_prints_the_filtered_page(world, settings, capsys):
    code = main(["--state", str(settings.state_dir), "catalogue", "--url", "http://localhost",
                 "--grade", "core"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "1 products match" in out and world.core_product["id"] in out
    assert world.product["id"] not in out


def test_product_commands_walk_a_draft_to_listed(world, settings, tmp_path, capsys):
    draft = world.merchant.call(
        "POST",
        "/products",
        json={"name": "cli", "resource_id": world.resource["id"],
              "authorisation_id": world.authorisation["id"], "delivery_modes": ["api"],
              "offers": [OFFER]},
    ).json()  # fmt: skip
    merchant = ["--url", "http://localhost", "--as", world.merchant.id,
                "--key", _key_file(tmp_path, world.merchant)]  # fmt: skip
    assert main(["product", "submit", draft["id"], *merchant]) == 0
    assert "is review" in capsys.readouterr().out
    state = ["--state", str(settings.state_dir)]
    assert main([*state, "product", "list", draft["id"], "--url", "http://localhost"]) == 0
    assert "is listed" in capsys.readouterr().out
    assert main([*state, "product", "list", draft["id"], "--url", "http://localhost"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 409" in err and "current state listed" in err and "delisted, suspended" in err


def test_contract_command_suspends_with_a_reason(world, tmp_path, capsys):
    contract = world.contract(world.product["offers"][0]["id"])
    merchant = ["--url", "http://localhost", "--as", world.merchant.id,
                "--key", _key_file(tmp_path, world.merchant)]  # fmt: skip
    code = main(["contract", "suspend", contract["id"], "--reason", "audit", *merchant])
    assert code == 0 and "is SUSPENDED" in capsys.readouterr().out
    consumer = ["--url", "http://localhost", "--as", world.consumer.id,
                "--key", _key_file(tmp_path, world.consumer)]  # fmt: skip
    assert main(["contract", "revoke", contract["id"], *consumer]) == 1
    assert "HTTP 403" in capsys.readouterr().err
