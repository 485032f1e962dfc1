"""Two dsgw gateways federated over DSP on loopback (real `dsgw serve` processes, the real OPA,
each engine of the suite): a consumer registered at B finds a product of A in B's federated
catalogue, negotiates through B, pulls under the agreement; both ledgers are exported and
`dsgw ledger verify-federated` proves the exchange on both sides; a suspended peer is refused
and recorded."""

import hashlib
import json
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from gateway.demo import Party, random_uscc
from gateway.participants.service import PLATFORM_ADMIN_ID
from gateway.policy.opa_process import free_port
from ledger import Signer, load_or_create_signer
from tests.conftest import DATABASES
from tests.e2e.world import OFFER, build_world
from tests.support.serving import REPO, Served

DSP = "/dsp/2025-1"


class Side:
    """One gateway of the pair: its process, state folder, database and admin."""

    def __init__(self, name: str, tmp: Path, opa_url: str, database_url: str | None) -> None:
        self.name = name
        self.state = tmp / name
        self.database_url = database_url
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        args = ["--opa-url", opa_url] + (["--database-url", database_url] if database_url else [])
        env = {"DSGW_ISSUER": self.url, "DSGW_SINK_ALLOWED_NETWORKS": "127.0.0.0/8"}
        self.served = Served(self.state, port, *args, env=env)
        self.client: httpx.Client | None = None

    def start(self) -> "Side":
        self.served.wait_ready()
        self.client = httpx.Client(base_url=self.url, timeout=30)
        key = load_or_create_signer(self.state / "keys" / "admin-ed25519.jwk")
        self.admin = Party(self.client, f"admin {self.name}", key, PLATFORM_ADMIN_ID)
        return self

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.served.stop()

    def onboard(self, name: str, key: Signer, uscc: str, roles: list[str]) -> Party:
        body = {"name": name, "uscc": uscc, "roles": roles, "region": "domestic",
                "jwks": {"keys": [key.public_jwk()]}}  # fmt: skip
        made = self.admin.call("POST", "/participants", json=body)
        assert made.status_code == 201, made.text
        return Party(self.client, name, key, made.json()["id"])

    def export(self, out: Path) -> Path:
        argv = [sys.executable, "-m", "gateway.cli", "--state", str(self.state), "ledger"]
        argv += ["export", "--out", str(out)]
        argv += ["--database-url", self.database_url] if self.database_url else []
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return out


def entries(export: Path) -> list[dict]:
    lines = (export / "entries.jsonl").read_text().splitlines()
    return [json.loads(line)["body"] for line in lines]


@pytest.fixture(params=DATABASES)
def pair(request, tmp_path, opa_server):
    """Gateways A (the provider's) and B (the consumer's), each with its own database."""
    urls: list[str | None] = [None, None]
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        names = [f"f_{uuid.uuid4().hex[:12]}" for _ in range(2)]
        for name in names:
            cluster.create_database(name)
        urls = [cluster.url(n) for n in names]
    a = Side("a", tmp_path, opa_server.url, urls[0])
    b = Side("b", tmp_path, opa_server.url, urls[1])
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()
        if request.param == "postgresql":
            for name in names:
                cluster.drop_database(name)


def federate(a: Side, b: Side):
    """A's world (merchant, product), one consumer onboarded at both (its home is B, with the
    same key and USCC), and each gateway registered as the other's peer."""
    world = build_world(a.client, a.state)
    world.files = world.publish(offers=[OFFER], name="residents as files",
                                delivery_modes=["api", "file"])  # fmt: skip
    key, uscc = Signer.generate(), random_uscc(random.Random())
    at_a = a.onboard("enterprise", key, uscc, ["consumer"])
    at_b = b.onboard("enterprise", key, uscc, ["consumer"])
    for here, there, body in (
        (a, b, {"participants": [at_a.id]}),
        (b, a, {"accounts": {at_b.id: at_a.id}}),
    ):
        made = here.admin.call("POST", "/peers", json={
            "id": there.url, "dsp_url": f"{there.url}{DSP}",
            "jwks_url": f"{there.url}/.well-known/jwks.json", **body,
        })  # fmt: skip
        assert made.status_code == 201, made.text
    return world, at_a, at_b


def wait_for(party: Party, path: str, state: str) -> dict:
    """Poll a federated process until it reaches `state` (a callback moves it)."""
    for _ in range(300):
        found = party.call("GET", path)
        assert found.status_code == 200, found.text
        if found.json()["state"] == state:
            return found.json()
        time.sleep(0.1)
    raise AssertionError(f"{path} never became {state}: {found.json()}")


def dsgw(*args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "gateway.cli", *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)


def verify_federated(a_export: Path, b_export: Path) -> subprocess.CompletedProcess:
    return dsgw("ledger", "verify-federated", str(a_export), str(b_export))


def test_a_consumer_at_b_negotiates_through_b_and_pulls_from_a_and_both_ledgers_prove_it(
    pair, tmp_path
):
    a, b = pair
    world, at_a, consumer = federate(a, b)
    product = world.files
    offer = product["offers"][0]["id"]

    catalogue = consumer.call("GET", "/federation/catalogue", params={"peer": a.url})
    assert catalogue.status_code == 200, catalogue.text
    assert catalogue.json()["participant_id"] == at_a.id
    datasets = {d["@id"]: d for d in catalogue.json()["catalog"]["dataset"]}
    assert offer in {o["@id"] for o in datasets[product["id"]]["hasPolicy"]}

    wanted = {"peer": a.url, "offer_id": offer, "dataset_id": product["id"]}
    opened = consumer.call("POST", "/federation/consumer/negotiations", json=wanted)
    assert opened.status_code == 201, opened.text
    negotiation = opened.json()
    assert negotiation["state"] == "REQUESTED" and negotiation["provider_pid"].startswith("ctr_")

    # A's merchant agrees through A's own API; the agreement reaches B's callback.
    inbox = world.merchant.call("GET", "/federation/negotiations", params={"state": "REQUESTED"})
    mine = [n for n in inbox.json()["items"] if n["consumer_pid"] == negotiation["consumer_pid"]]
    assert mine and mine[0]["consumer_id"] == at_a.id
    agreed = world.merchant.call(
        "POST", f"/federation/negotiations/{negotiation['provider_pid']}/agree",
        json={"signature": world.merchant.sign(mine[0]["document"])},
    )  # fmt: skip
    assert agreed.status_code == 200, agreed.text
    path = f"/federation/consumer/negotiations/{negotiation['consumer_pid']}"
    agreement = wait_for(consumer, path, "AGREED")
    assert agreement["document"] == mine[0]["document"]

    # The consumer signs at B; B checks the JWS, then A verifies it and finalises.
    bad = consumer.call("POST", f"{path}/verify", json={"signature": world.merchant.sign(
        agreement["document"])})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["type"] == "urn:dsgw:problem:invalid-signature"
    verified = consumer.call(
        "POST", f"{path}/verify", json={"signature": consumer.sign(agreement["document"])}
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["state"] == "FINALIZED"
    contract = at_a.call("GET", f"/contracts/{negotiation['provider_pid']}")
    assert contract.status_code == 200 and contract.json()["state"] == "FINALIZED"

    started = consumer.call("POST", "/federation/consumer/transfers",
                            json={"negotiation": negotiation["consumer_pid"]})  # fmt: skip
    assert started.status_code == 201, started.text
    transfer_path = f"/federation/consumer/transfers/{started.json()['consumer_pid']}"
    transfer = wait_for(consumer, transfer_path, "STARTED")
    assert transfer["endpoint"].startswith(f"{a.url}/transfers/")
    # The same, as a person types it at B (dsgw federation …, signed in with the consumer's key).
    key_file = tmp_path / "consumer.jwk"
    key_file.write_text(json.dumps(consumer.key.private_jwk()))
    as_consumer = ["--url", b.url, "--as", consumer.id, "--key", str(key_file)]
    typed = dsgw("federation", "catalogue", "--peer", a.url, *as_consumer)
    assert typed.returncode == 0, typed.stderr
    assert product["id"] in typed.stdout and offer in typed.stdout
    listed = dsgw("federation", "list", *as_consumer)
    assert f"transfer {started.json()['consumer_pid']} at {a.url}: STARTED" in listed.stdout
    assert f"negotiation {negotiation['consumer_pid']} at {a.url}: FINALIZED" in listed.stdout
    saved = tmp_path / "pulled.jsonl"
    pulled = dsgw("federation", "pull", started.json()["consumer_pid"], "--out", str(saved),
                  *as_consumer)  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    content = saved.read_bytes()
    rows = [json.loads(line) for line in content.splitlines() if line]
    assert rows and "name" in rows[0]
    # The transfer is COMPLETED at A once delivered: its token opens nothing more.
    assert consumer.call("GET", f"{transfer_path}/data").status_code == 502

    a_export, b_export = a.export(tmp_path / "a-export"), b.export(tmp_path / "b-export")
    b_types = [e["type"] for e in entries(b_export)]
    for kind in ("federation.catalogue", "federation.sent", "federation.answered",
                 "federation.received", "federation.pulled"):  # fmt: skip
        assert kind in b_types, kind
    [pulled_entry] = [e for e in entries(b_export) if e["type"] == "federation.pulled"]
    assert pulled_entry["data"]["sha256"] == hashlib.sha256(content).hexdigest()
    completed = [e for e in entries(a_export) if e["type"] == "transfer.completed"]
    assert completed and completed[-1]["data"]["sha256"] == pulled_entry["data"]["sha256"]
    peer_steps = [e for e in entries(a_export) if e["type"] == "dsp.peer-step"]
    assert {e["data"]["step"] for e in peer_steps} == {"negotiate", "agreement", "verify",
                                                        "transfer"}  # fmt: skip
    assert all(e["data"]["peer"] == b.url for e in peer_steps)

    proven = verify_federated(a_export, b_export)
    assert proven.returncode == 0, proven.stdout + proven.stderr
    assert f"exchange {negotiation['consumer_pid']}:" in proven.stdout
    assert f"exchange {started.json()['consumer_pid']}:" in proven.stdout

    # B's export given for A's proves nothing (tampering: tests/unit/test_ledger_federated.py).
    assert verify_federated(b_export, b_export).returncode == 1


def test_a_suspended_peer_is_refused_and_recorded_on_both_sides(pair, tmp_path):
    a, b = pair
    _world, _at_a, consumer = federate(a, b)

    # B's registry suspends A: B refuses its consumer's step itself (policy), and records it.
    suspended = b.admin.call("POST", f"/peers/{a.url}/suspend", json={"reason": "audit"})
    assert suspended.status_code == 200
    refused = consumer.call("GET", "/federation/catalogue", params={"peer": a.url})
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:dsgw:problem:peer-suspended"
    assert [r["code"] for r in refused.json()["reasons"]] == ["PEER_INACTIVE"]
    unknown = consumer.call("GET", "/federation/catalogue", params={"peer": "https://x.example"})
    assert unknown.status_code == 404 and unknown.json()["type"] == "urn:dsgw:problem:peer-unknown"
    assert b.admin.call("POST", f"/peers/{a.url}/reactivate").status_code == 200
    # A participant of B with no account at A is refused by B's policy.
    stranger = b.onboard("stranger", Signer.generate(), random_uscc(random.Random()), ["consumer"])
    denied = stranger.call("GET", "/federation/catalogue", params={"peer": a.url})
    assert denied.status_code == 403, denied.text
    assert denied.json()["type"] == "urn:dsgw:problem:federation-denied"
    assert [r["code"] for r in denied.json()["reasons"]] == ["PEER_ACCOUNT_MISSING"]

    # A's registry suspends B: A refuses B's signed token (recorded at A), B fails closed
    # (recorded at B).
    assert a.admin.call("POST", f"/peers/{b.url}/suspend").status_code == 200
    failed = consumer.call("GET", "/federation/catalogue", params={"peer": a.url})
    assert failed.status_code == 502, failed.text
    assert failed.json()["type"] == "urn:dsgw:problem:peer-refused-step"
    assert failed.json()["peer_status"] == 401

    # A peer that does not answer: a 502, recorded.
    gone = f"http://127.0.0.1:{free_port()}"
    registered = b.admin.call("POST", "/peers", json={
        "id": gone, "dsp_url": f"{gone}{DSP}", "jwks": {"keys": [Signer.generate().public_jwk()]},
        "accounts": {consumer.id: "prt_elsewhere"},
    })  # fmt: skip
    assert registered.status_code == 201, registered.text
    away = consumer.call("GET", "/federation/catalogue", params={"peer": gone})
    assert away.status_code == 502 and away.json()["type"] == "urn:dsgw:problem:peer-unreachable"

    # A callback without the peer's own signed token is refused (fail closed).
    stray = b.client.post(f"{DSP}/callback/negotiations/fng_x/agreement",
                          json={"@type": "ContractAgreementMessage"})  # fmt: skip
    assert stray.status_code == 401 and stray.json()["@type"] == "ContractNegotiationError"

    a_entries = entries(a.export(tmp_path / "a"))
    b_entries = entries(b.export(tmp_path / "b"))
    at_a = [e["data"] for e in a_entries if e["type"] == "dsp.peer-refused"]
    assert at_a and at_a[-1]["reason"] == "suspended-peer" and at_a[-1]["claimed_issuer"] == b.url
    at_b = [e["data"] for e in b_entries if e["type"] == "federation.refused"]
    assert [(r["problem"], r["peer"]) for r in at_b] == [
        ("peer-suspended", a.url), ("peer-unknown", "https://x.example"),
        ("federation-denied", a.url), ("peer-refused-step", a.url), ("peer-unreachable", gone),
    ]  # fmt: skip
