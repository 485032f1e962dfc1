"""Trust between gateways over DSP (real OPA, both databases): the peer registry, signed peer
tokens on DSP requests (refused ones recorded), and the atomic DSP contract request."""

import dataclasses
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import text

from gateway.core import clock
from gateway.dsp import flows
from gateway.dsp.models import DspNegotiation
from ledger import Signer
from tests.e2e.test_dsp_bindings import contract_request, message
from tests.e2e.test_evidence_atomic import _break_ledger_appends
from tests.e2e.test_transfers import entries, transfer_world

DSP = "/dsp/2025-1"
PEER = "https://peer-b.example"


@pytest.fixture
def world(client, settings):
    world = transfer_world(client, settings)
    world.peer_key = Signer.generate()
    world.remote = world.register("remote consumer", ["consumer"])  # its home is the peer
    return world


def register_peer(world, peer_id: str = PEER, key: Signer | None = None, **more):
    body = {
        "id": peer_id,
        "dsp_url": f"{peer_id}/dsp/2025-1",
        "jwks": {"keys": [(key or world.peer_key).public_jwk()]},
        "participants": [world.remote.id],
        **more,
    }
    return world.admin.call("POST", "/peers", json=body)


def peer_token(
    gateway, key: Signer, *, iss: str = PEER, participant: str, lifetime: int = 60, **claims
) -> str:
    """A peer gateway's token for one DSP request (EdDSA, as DCP's self-issued ID token)."""
    now = int(clock.now().timestamp())
    body = {
        "iss": iss,
        "sub": iss,
        "aud": gateway.settings.issuer,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        "participant_id": participant,
        **claims,
    }
    private = OKPAlgorithm.from_jwk(key.private_jwk())
    return jwt.encode(body, private, algorithm="EdDSA", headers={"kid": key.kid})


def as_peer(world, token: str, method: str, path: str, body: dict | None = None):
    return world.client.request(
        method, f"{DSP}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def catalog(world, token: str):
    return as_peer(world, token, "POST", "/catalog/request", message("CatalogRequestMessage"))


# -- the registry -------------------------------------------------------------------------


def test_the_admin_registers_lists_suspends_and_reactivates_a_peer_on_the_ledger(world, gateway):
    made = register_peer(world)
    assert made.status_code == 201, made.text
    peer = made.json()
    assert peer["id"] == PEER and peer["status"] == "active"
    assert peer["participants"] == [world.remote.id]
    registered = entries(gateway, "peer.registered")[-1].body["data"]
    assert registered["peer"] == PEER and registered["by"] == world.admin.id
    assert registered["jwks"]["keys"][0]["x"] == world.peer_key.public_jwk()["x"]
    listed = world.admin.call("GET", "/peers").json()["items"]
    assert [p["id"] for p in listed] == [PEER]
    suspended = world.admin.call("POST", f"/peers/{PEER}/suspend", json={"reason": "audit"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert entries(gateway, "peer.suspended")[-1].body["data"]["reason"] == "audit"
    again = world.admin.call("POST", f"/peers/{PEER}/suspend")
    assert (
        again.status_code == 409 and again.json()["type"] == "urn:dsgw:problem:invalid-transition"
    )
    back = world.admin.call("POST", f"/peers/{PEER}/reactivate")
    assert back.status_code == 200 and back.json()["status"] == "active"
    assert entries(gateway, "peer.reactivated")[-1].body["data"]["peer"] == PEER


def test_only_the_admin_manages_peers(world):
    assert register_peer(world).status_code == 201
    for method, path in [("POST", "/peers"), ("GET", "/peers"), ("POST", f"/peers/{PEER}/suspend")]:
        found = world.consumer.call(method, path, json={} if method == "POST" else None)
        assert found.status_code in (403, 422), found.text
        if found.status_code == 422:  # the body is checked first; then the role
            continue
        assert found.json()["type"] == "urn:dsgw:problem:forbidden"
    refused = world.consumer.call(
        "POST", "/peers", json={"id": "https://x.example", "dsp_url": "https://x.example",
                                "jwks": {"keys": [world.peer_key.public_jwk()]}}
    )  # fmt: skip
    assert refused.status_code == 403


def test_a_peer_registration_that_cannot_hold_is_a_problem_never_a_500(world, gateway):
    assert register_peer(world).status_code == 201
    assert register_peer(world).status_code == 409  # already registered
    cases = [
        {"participants": ["prt_nobody"]},  # not onboarded here
        {"participants": [world.admin.id]},  # no peer acts for the admin
        {"jwks": None},  # no keys at all
        {"jwks_url": "https://keys.example/jwks.json"},  # both kinds of keys
        {"dsp_url": "ftp://x"},
        {"jwks": {"keys": [{**world.peer_key.public_jwk(), "d": "secret"}]}},
        {"jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "A" * 43}]}},
    ]
    for n, case in enumerate(cases):
        found = register_peer(world, f"https://peer-{n}.example", **case)
        assert found.status_code == 422, (case, found.text)
        assert found.headers["content-type"] == "application/problem+json"
    # A participant has one home: another peer cannot claim the first one's participant.
    second = register_peer(world, "https://peer-c.example", key=Signer.generate())
    assert second.status_code == 409, second.text
    assert second.json()["type"] == "urn:dsgw:problem:participant-has-home"
    own = register_peer(world, gateway.settings.issuer)
    assert own.status_code == 422 and "own issuer" in own.json()["detail"]
    for bad in ("not a url", "https://" + "x" * 600):
        assert register_peer(world, bad).status_code == 422


class _Keys:
    """A peer's JWKS endpoint on loopback, counting how often it is asked."""

    def __init__(self, jwks: dict) -> None:
        self.asked = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server interface
                owner.asked += 1
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_jwks_url_is_fetched_once_at_registration_under_the_egress_rules(world, gateway):
    keys = _Keys({"keys": [world.peer_key.public_jwk()]})
    try:
        made = register_peer(world, jwks=None, jwks_url=keys.url)
        assert made.status_code == 201, made.text
        assert made.json()["jwks"]["keys"][0]["kid"] == world.peer_key.kid
        token = peer_token(gateway, world.peer_key, participant=world.remote.id)
        assert catalog(world, token).status_code == 200
        assert keys.asked == 1  # fetched once, at registration, not per request
        gateway.settings = dataclasses.replace(gateway.settings, sink_allowed_networks="")
        refused = register_peer(world, "https://peer-c.example", jwks=None, jwks_url=keys.url)
        assert refused.status_code == 422 and "internal address" in refused.json()["detail"]
        assert keys.asked == 1
    finally:
        keys.close()


def test_a_jwks_url_that_gives_no_keys_is_a_422(world):
    empty, huge = _Keys({"keys": []}), _Keys({"keys": [], "pad": "x" * 70_000})
    try:
        for n, url in enumerate([empty.url, huge.url, "http://[::1/jwks", "http://127.0.0.1:1/"]):
            found = register_peer(world, f"https://peer-{n}.example", jwks=None, jwks_url=url)
            assert found.status_code == 422, (url, found.text)
            assert found.headers["content-type"] == "application/problem+json"
    finally:
        empty.close()
        huge.close()
    assert world.admin.call("GET", "/peers").json()["items"] == []


# -- peer tokens on DSP requests --------------------------------------------------------------


def test_a_peer_token_acts_for_its_participant_on_dsp_routes(world, gateway):
    assert register_peer(world).status_code == 201
    token = peer_token(gateway, world.peer_key, participant=world.remote.id)
    found = catalog(world, token)
    assert found.status_code == 200, found.text
    assert world.files["id"] in {d["@id"] for d in found.json()["dataset"]}
    offer = world.files["offers"][0]["id"]
    fresh = peer_token(gateway, world.peer_key, participant=world.remote.id)
    opened = as_peer(world, fresh, "POST", "/negotiations/request", contract_request(offer))
    assert opened.status_code == 201, opened.text
    contract = world.remote.call("GET", f"/contracts/{opened.json()['providerPid']}").json()
    assert contract["consumer_id"] == world.remote.id
    # Our own participants' tokens (the TCK's path) still work beside peer tokens.
    mine = world.consumer.call(
        "POST", f"{DSP}/catalog/request", json=message("CatalogRequestMessage")
    )
    assert mine.status_code == 200, mine.text


def _refused(world, gateway, token: str, reason: str) -> None:
    before = len(entries(gateway, "dsp.peer-refused"))
    found = catalog(world, token)
    assert found.status_code == 401, found.text
    body = found.json()
    assert body["@type"] == "CatalogError" and body["type"] == "urn:dsgw:problem:peer-refused"
    assert body["refusal"] == reason
    recorded = entries(gateway, "dsp.peer-refused")
    assert len(recorded) == before + 1
    data = recorded[-1].body["data"]
    assert data["reason"] == reason and data["path"] == f"{DSP}/catalog/request"
    assert token not in json.dumps(recorded[-1].body)
    assert token.rsplit(".", 1)[-1] not in json.dumps(recorded[-1].body)  # not even its signature
    return data


def test_an_unknown_peer_is_refused_and_recorded_with_its_claimed_issuer(world, gateway):
    token = peer_token(gateway, world.peer_key, iss="https://stranger.example",
                       participant=world.remote.id)  # fmt: skip
    data = _refused(world, gateway, token, "unknown-peer")
    assert data["claimed_issuer"] == "https://stranger.example"


def test_a_suspended_peer_is_refused_and_recorded_until_reactivated(world, gateway):
    assert register_peer(world).status_code == 201
    world.admin.call("POST", f"/peers/{PEER}/suspend", json={"reason": "incident"})
    token = peer_token(gateway, world.peer_key, participant=world.remote.id)
    assert _refused(world, gateway, token, "suspended-peer")["claimed_issuer"] == PEER
    world.admin.call("POST", f"/peers/{PEER}/reactivate")
    token = peer_token(gateway, world.peer_key, participant=world.remote.id)
    assert catalog(world, token).status_code == 200


def test_a_token_not_signed_by_the_peers_registered_key_is_refused(world, gateway):
    assert register_peer(world).status_code == 201
    impostor = Signer.generate()
    token = peer_token(gateway, impostor, participant=world.remote.id)
    _refused(world, gateway, token, "bad-signature")
    # Its registered kid on the header does not help a foreign key either.
    private = OKPAlgorithm.from_jwk(impostor.private_jwk())
    now = int(clock.now().timestamp())
    forged = jwt.encode(
        {"iss": PEER, "sub": PEER, "aud": gateway.settings.issuer, "iat": now, "exp": now + 60,
         "jti": "forged", "participant_id": world.remote.id},
        private, algorithm="EdDSA", headers={"kid": world.peer_key.kid},
    )  # fmt: skip
    _refused(world, gateway, forged, "bad-signature")


def test_an_expired_or_too_long_lived_or_future_token_is_refused(world, gateway):
    assert register_peer(world).status_code == 201
    key, who = world.peer_key, world.remote.id
    now = int(clock.now().timestamp())
    _refused(world, gateway, peer_token(gateway, key, participant=who, iat=now - 120,
                                        exp=now - 60), "expired")  # fmt: skip
    _refused(world, gateway, peer_token(gateway, key, participant=who, lifetime=301),
             "too-long-lived")  # fmt: skip
    _refused(world, gateway, peer_token(gateway, key, participant=who, iat=now + 3600,
                                        exp=now + 3660), "not-yet-valid")  # fmt: skip


def test_a_replayed_peer_token_is_refused(world, gateway):
    assert register_peer(world).status_code == 201
    token = peer_token(gateway, world.peer_key, participant=world.remote.id)
    assert catalog(world, token).status_code == 200
    _refused(world, gateway, token, "replayed")


def test_a_token_for_another_audience_is_refused(world, gateway):
    assert register_peer(world).status_code == 201
    token = peer_token(gateway, world.peer_key, participant=world.remote.id,
                       aud="https://another-gateway.example")  # fmt: skip
    _refused(world, gateway, token, "wrong-audience")


def test_the_peers_participants_are_held_to_our_onboarding_rules(world, gateway):
    assert register_peer(world).status_code == 201
    key = world.peer_key
    _refused(world, gateway, peer_token(gateway, key, participant="prt_nobody"),
             "unknown-participant")  # fmt: skip
    # One of our own participants whose home is not the peer: the peer cannot act for it.
    _refused(world, gateway, peer_token(gateway, key, participant=world.consumer.id),
             "not-peer-participant")  # fmt: skip
    _refused(world, gateway, peer_token(gateway, key, participant=world.admin.id),
             "not-peer-participant")  # fmt: skip
    suspended = world.admin.call(
        "POST", f"/participants/{world.remote.id}/suspend", json={"reason": "onboarding review"}
    )
    assert suspended.status_code == 200, suspended.text
    _refused(world, gateway, peer_token(gateway, key, participant=world.remote.id),
             "suspended-participant")  # fmt: skip
    _refused(world, gateway, peer_token(gateway, key, participant=None), "malformed")


def test_anything_but_our_token_or_a_peer_token_is_a_401_not_recorded(world, gateway):
    before = len(entries(gateway, "dsp.peer-refused"))
    for header in ("Bearer not-a-jwt", "Basic abc", "Bearer a.b.c", "Bearer " + "x" * 5000):
        found = world.client.post(
            f"{DSP}/catalog/request",
            json=message("CatalogRequestMessage"),
            headers={"Authorization": header},
        )
        assert found.status_code == 401, (header, found.text)
    assert len(entries(gateway, "dsp.peer-refused")) == before


def test_a_refusal_the_ledger_cannot_record_fails_closed(world, gateway):
    assert register_peer(world).status_code == 201
    _break_ledger_appends(gateway)
    token = peer_token(gateway, Signer.generate(), participant=world.remote.id)
    found = catalog(world, token)
    assert found.status_code == 503, found.text
    assert found.json()["type"] == "urn:dsgw:problem:evidence-unavailable"


# -- an atomic contract request over DSP --------------------------------------------------


def test_a_dsp_contract_request_whose_link_cannot_be_stored_leaves_no_contract(
    world, gateway, monkeypatch
):
    """The contract and its DSP link commit together: if the link's insert fails, no contract
    (nor its contract.requested entry) remains that DSP could never reach."""

    def broken_link(**columns):
        return DspNegotiation(**{**columns, "consumer_pid": None})  # NOT NULL: the insert fails

    monkeypatch.setattr(flows, "DspNegotiation", broken_link)
    requested = len(entries(gateway, "contract.requested"))
    with gateway.engine.connect() as conn:
        before = conn.execute(
            text("SELECT count(*) FROM contracts WHERE consumer_id = :c"), {"c": world.remote.id}
        ).scalar_one()
    offer = world.files["offers"][0]["id"]
    found = world.remote.call("POST", f"{DSP}/negotiations/request", json=contract_request(offer))
    assert found.status_code == 503, found.text
    with gateway.engine.connect() as conn:
        after = conn.execute(
            text("SELECT count(*) FROM contracts WHERE consumer_id = :c"), {"c": world.remote.id}
        ).scalar_one()
    assert after == before == 0
    assert len(entries(gateway, "contract.requested")) == requested
    monkeypatch.undo()
    again = world.remote.call("POST", f"{DSP}/negotiations/request", json=contract_request(offer))
    assert again.status_code == 201, again.text


# -- the command line ---------------------------------------------------------------------


def test_peer_commands_add_list_suspend_and_reactivate(
    world, settings, tmp_path, monkeypatch, capsys
):
    from gateway.cli import main
    from gateway.products import cli as lifecycle_cli

    monkeypatch.setattr(lifecycle_cli, "client_factory", lambda **_: world.client)
    jwks = tmp_path / "peer-jwks.json"
    jwks.write_text(json.dumps({"keys": [world.peer_key.public_jwk()]}))
    admin = ["--state", str(settings.state_dir)]
    url = ["--url", "http://localhost"]
    added = main([*admin, "peer", "add", PEER, "--dsp-url", f"{PEER}/dsp/2025-1",
                  "--jwks", str(jwks), "--participant", world.remote.id, *url])  # fmt: skip
    out = capsys.readouterr().out
    assert added == 0 and f"peer {PEER} is active" in out and world.remote.id in out
    assert main([*admin, "peer", "list", *url]) == 0
    out = capsys.readouterr().out
    assert "1 peer(s)" in out and PEER in out
    assert main([*admin, "peer", "suspend", PEER, "--reason", "audit", *url]) == 0
    assert f"peer {PEER} is suspended" in capsys.readouterr().out
    assert main([*admin, "peer", "suspend", PEER, *url]) == 1
    assert "HTTP 409" in capsys.readouterr().err
    assert main([*admin, "peer", "reactivate", PEER, *url]) == 0
    assert f"peer {PEER} is active" in capsys.readouterr().out
    missing = main([*admin, "peer", "add", "https://c.example", "--dsp-url", "https://c.example",
                    "--jwks", str(tmp_path / "none.json"), *url])  # fmt: skip
    assert missing == 1 and "cannot read the JWKS file" in capsys.readouterr().err


def test_claims_no_database_can_hold_are_refused_and_recorded_never_a_500(world, gateway):
    """The guard sees no NUL inside a token's base64: the claims themselves are checked."""
    assert register_peer(world).status_code == 201
    key, who = world.peer_key, world.remote.id
    nul = peer_token(gateway, key, iss="https://peer\x00b.example", participant=who)
    data = _refused(world, gateway, nul, "unknown-peer")
    assert data["claimed_issuer"] == "https://peer?b.example"
    surrogate = peer_token(gateway, key, iss="https://peer\ud800.example", participant=who)
    assert _refused(world, gateway, surrogate, "unknown-peer")["claimed_issuer"] == (
        "https://peer?.example"
    )
    _refused(world, gateway, peer_token(gateway, key, participant=who, jti="j\x00"), "malformed")
    _refused(world, gateway, peer_token(gateway, key, participant="prt_\x00"), "malformed")


def test_a_token_whose_times_are_not_numbers_is_refused(world, gateway):
    assert register_peer(world).status_code == 201
    key, who = world.peer_key, world.remote.id
    for times in ({"exp": "soon"}, {"iat": None}):
        _refused(world, gateway, peer_token(gateway, key, participant=who, **times), "malformed")
    # NaN is no NumericDate, though Python's JSON reads it.
    now = int(clock.now().timestamp())
    private = OKPAlgorithm.from_jwk(key.private_jwk())
    claims = {"iss": PEER, "sub": PEER, "aud": gateway.settings.issuer, "iat": now,
              "exp": float("nan"), "jti": "nan", "participant_id": who}  # fmt: skip
    payload = json.dumps(claims).encode()
    nan = jwt.api_jws.encode(payload, private, algorithm="EdDSA", headers={"kid": key.kid})
    _refused(world, gateway, nan, "malformed")
