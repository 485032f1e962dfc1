"""The admin's way back on the gateway host (`dsgw participants keys …`), and `dsgw token`."""

import json
import sys

import jwt
import pytest
import structlog

from gateway.auth import cli as token_cli
from gateway.cli import main as dsgw
from gateway.demo import Party
from gateway.participants.models import Participant
from gateway.participants.service import PLATFORM_ADMIN_ID
from ledger import Signer, load_or_create_signer
from tests.e2e.world import register_party


@pytest.fixture(autouse=True)
def _logs_to_stderr():
    """The in-process gateway logs each request; keep stdout for what the CLI prints."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    yield
    structlog.reset_defaults()


@pytest.fixture
def admin(client, settings) -> Party:
    key = load_or_create_signer(settings.state_dir / "keys" / "admin-ed25519.jwk")
    return Party(client, "admin", key, PLATFORM_ADMIN_ID)


@pytest.fixture
def consumer(admin) -> Party:
    return register_party(admin, "consumer", ["consumer"])


def _keys(settings, command, *args) -> int:
    # The options first: after a "--" in `args` every word is a positional.
    return dsgw(
        ["--state", str(settings.state_dir), "participants", "keys", command,
         "--database-url", settings.resolved_database_url, *args]
    )  # fmt: skip


def _entries(admin) -> list[dict]:
    return [e["body"] for e in admin.call("GET", "/ledger/entries").json()]


def test_the_admin_rescues_a_participant_locked_out_by_a_bad_key(
    gateway, client, settings, admin, consumer, tmp_path, capsys
):
    # A key stored before the checks existed, and the only one: every sign-in fails.
    padded = {**consumer.key.public_jwk(), "x": consumer.key.public_jwk()["x"] + "="}
    padded["kid"] = "old"
    with gateway.sessions() as session:
        session.get(Participant, consumer.id).jwks = {"keys": [padded]}
        session.commit()
    consumer._token = None
    with pytest.raises(Exception, match="401"):
        consumer.token()

    assert _keys(settings, "list", consumer.id) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(k["kid"], k["usable"]) for k in listing["keys"]] == [("old", False)]

    new_key = tmp_path / "consumer-new.jwk"
    assert _keys(settings, "add", consumer.id, "--generate", str(new_key)) == 0
    added = json.loads(capsys.readouterr().out)
    assert new_key.stat().st_mode & 0o077 == 0
    successor = Signer.from_jwk(json.loads(new_key.read_text()))
    assert successor.kid in {k["kid"] for k in added["jwks"]["keys"]}
    assert _keys(settings, "retire", consumer.id, "old", "--reason", "malformed") == 0
    retired = json.loads(capsys.readouterr().out)
    assert [k["kid"] for k in retired["jwks"]["keys"]] == [successor.kid]

    rescued = Party(client, "consumer", successor, consumer.id)
    assert rescued.call("GET", f"/participants/{consumer.id}").status_code == 200
    added_entry, retired_entry = [
        b for b in _entries(admin) if b["type"].startswith("participant.key_")
    ]
    assert added_entry["type"] == "participant.key_added"
    assert added_entry["data"]["by"] == PLATFORM_ADMIN_ID
    assert retired_entry["type"] == "participant.key_retired"
    assert retired_entry["data"] == {"participant": consumer.id, "kid": "old",
                                     "by": PLATFORM_ADMIN_ID, "reason": "malformed"}  # fmt: skip


def test_the_key_cli_refuses_bad_keys_and_reports_problems(settings, consumer, tmp_path, capsys):
    weak = tmp_path / "weak.jwk"
    weak.write_text(json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "AQ" + "A" * 41}))
    assert _keys(settings, "add", consumer.id, "--jwk", str(weak)) == 2
    assert "small order" in capsys.readouterr().err
    public = tmp_path / "public.jwk"
    public.write_text(json.dumps(consumer.key.public_jwk()))
    assert _keys(settings, "add", consumer.id, "--jwk", str(public)) == 1
    assert json.loads(capsys.readouterr().err)["type"] == "urn:dsgw:problem:duplicate-key"
    # A thumbprint kid may begin with "-" (one in 64): after "--" it is never an option.
    assert _keys(settings, "retire", consumer.id, "--", consumer.key.kid) == 1
    assert json.loads(capsys.readouterr().err)["type"] == "urn:dsgw:problem:last-key"
    assert _keys(settings, "retire", consumer.id, "--", "-no-such-kid") == 1
    assert json.loads(capsys.readouterr().err)["type"] == "urn:dsgw:problem:not-found"
    assert _keys(settings, "list", "prt_nobody") == 1
    assert json.loads(capsys.readouterr().err)["type"] == "urn:dsgw:problem:not-found"


def test_dsgw_token_prints_a_token_the_api_accepts(
    client, settings, consumer, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(token_cli, "client_factory", lambda **_: client)
    key = tmp_path / "consumer.jwk"
    key.write_text(json.dumps(consumer.key.private_jwk()))
    argv = ["token", "--as", consumer.id, "--key", str(key), "--url", "http://localhost"]
    assert dsgw(argv) == 0
    out = capsys.readouterr().out
    token = out.strip()
    assert out == token + "\n"  # one line: TOKEN=$(dsgw token …)
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == consumer.id
    bearer = {"Authorization": f"Bearer {token}"}
    answer = client.get(f"/participants/{consumer.id}", headers=bearer)
    assert answer.status_code == 200
    # Without --as/--key: the platform admin, with the state folder's key.
    assert dsgw(["--state", str(settings.state_dir), "token", "--url", "http://localhost"]) == 0
    admin_token = capsys.readouterr().out.strip()
    assert jwt.decode(admin_token, options={"verify_signature": False})["sub"] == PLATFORM_ADMIN_ID
    # A key the gateway does not know: a message on stderr, nothing on stdout, exit 1.
    key.write_text(json.dumps(Signer.generate().private_jwk()))
    assert dsgw(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "refused (HTTP 401)" in captured.err
