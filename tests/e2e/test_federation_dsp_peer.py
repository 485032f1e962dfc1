"""A dsgw gateway negotiating, for its consumer, with a DSP connector that is no dsgw gateway (a
"dsp" peer: the DSP TCK's provider, say). A real `dsgw serve` (the real OPA, each engine of the
suite) and, on loopback, a minimal DSP provider that records what it is sent. The peer's
callbacks are authenticated by the per-process callback key our request gave it; a callback
with another key, or a dsgw-style callback from it, is refused and recorded."""

import json
import random
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from gateway.demo import random_uscc
from gateway.peers.service import sign_token
from gateway.policy.opa_process import free_port
from ledger import Signer
from tests.conftest import DATABASES
from tests.e2e.test_federation import DSP, Side, entries, wait_for

CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld"]


class Provider(ThreadingHTTPServer):
    """A DSP provider that answers a contract or transfer request with its process (REQUESTED),
    anything else with an empty 200, and keeps what it was sent: [(path, body)]."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, suffix: str) -> list[dict]:
        return [body for path, body in self.received if path.endswith(suffix)]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.received.append((self.path, body))
        if self.path.endswith(("/negotiations/request", "/transfers/request")):
            negotiation = self.path.endswith("/negotiations/request")
            answer = {"@context": CONTEXT, "state": "REQUESTED",
                      "@type": "ContractNegotiation" if negotiation else "TransferProcess",
                      "providerPid": "prov-1" if negotiation else "tp-1",
                      "consumerPid": body.get("consumerPid")}  # fmt: skip
            raw = json.dumps(answer).encode()
            self.send_response(201)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        else:  # an event, verification or termination: an empty 200, as DSP has it
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(params=DATABASES)
def gateway_and_provider(request, tmp_path, opa_server):
    url = None
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        name = f"f_{uuid.uuid4().hex[:12]}"
        cluster.create_database(name)
        url = cluster.url(name)
    side = Side("b", tmp_path, opa_server.url, url)
    provider = Provider()
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    try:
        side.start()
        yield side, provider
    finally:
        provider.shutdown()
        side.stop()
        if request.param == "postgresql":
            cluster.drop_database(name)


def _setup(side: Side, provider: Provider):
    consumer = side.onboard("buyer", Signer.generate(), random_uscc(random.Random()), ["consumer"])
    made = side.admin.call("POST", "/peers", json={
        "id": provider.url, "kind": "dsp", "dsp_url": provider.url,
        "accounts": {consumer.id: "TCK_PARTICIPANT"},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["kind"] == "dsp" and made.json()["jwks"] == {"keys": []}
    started = consumer.call("POST", "/federation/initiate/negotiations", json={
        "providerId": "TCK_PARTICIPANT", "connectorAddress": provider.url,
        "datasetId": "ds-1", "offerId": "offer-ds-1",
    })  # fmt: skip
    assert started.status_code == 201, started.text
    process = started.json()
    (request,) = provider.bodies("/negotiations/request")
    callback = request["callbackAddress"]
    assert callback.startswith(f"{side.url}{DSP}/callback/k/")
    return consumer, process, callback


def _post(callback: str, path: str, type_: str, pid: str, **members) -> httpx.Response:
    body = {"@context": CONTEXT, "@type": type_, "providerPid": "prov-1", "consumerPid": pid,
            **members}  # fmt: skip
    return httpx.post(f"{callback}/negotiations/{pid}/{path}", json=body, timeout=30)


def test_a_dsp_peer_offers_the_consumer_accepts_then_agreement_verification_and_finalisation(
    gateway_and_provider,
):
    side, provider = gateway_and_provider
    consumer, process, callback = _setup(side, provider)
    pid = process["consumer_pid"]
    path = f"/federation/consumer/negotiations/{pid}"
    assert process["state"] == "REQUESTED" and process["provider_pid"] == "prov-1"
    # Finalisation before any agreement is out of turn: refused, the state unchanged.
    early = _post(callback, "events", "ContractNegotiationEventMessage", pid, eventType="FINALIZED")
    assert early.status_code == 409, early.text
    offer = {"@id": "offer-ds-1", "@type": "Offer", "target": "ds-1"}
    offered = _post(callback, "offers", "ContractOfferMessage", pid, offer=offer)
    assert offered.status_code == 200, offered.text
    assert consumer.call("GET", path).json()["state"] == "OFFERED"
    # An agreement over an offer the consumer has not accepted is out of turn.
    agreement = {"@id": "agr-1", "@type": "Agreement", "target": "ds-1"}
    out_of_turn = _post(callback, "agreement", "ContractAgreementMessage", pid, agreement=agreement)
    assert out_of_turn.status_code == 409, out_of_turn.text
    accepted = consumer.call("POST", f"{path}/accept")
    assert accepted.status_code == 200 and accepted.json()["state"] == "ACCEPTED", accepted.text
    (event,) = provider.bodies("/negotiations/prov-1/events")
    assert event["eventType"] == "ACCEPTED" and event["consumerPid"] == pid
    agreed = _post(callback, "agreement", "ContractAgreementMessage", pid, agreement=agreement)
    assert agreed.status_code == 200, agreed.text
    assert wait_for(consumer, path, "AGREED")["document"]["@id"] == "agr-1"
    verified = consumer.call("POST", f"{path}/verify", json={})
    assert verified.status_code == 200 and verified.json()["state"] == "VERIFIED", verified.text
    assert provider.bodies("/negotiations/prov-1/agreement/verification")
    final = _post(callback, "events", "ContractNegotiationEventMessage", pid, eventType="FINALIZED")
    assert final.status_code == 200, final.text
    state = httpx.get(f"{callback}/negotiations/{pid}", timeout=30)
    assert state.status_code == 200 and state.json()["state"] == "FINALIZED", state.text


def test_the_consumer_counters_a_dsp_peers_offer_once_and_the_peer_may_offer_again(
    gateway_and_provider, tmp_path
):
    side, provider = gateway_and_provider
    consumer, process, callback = _setup(side, provider)
    pid = process["consumer_pid"]
    path = f"/federation/consumer/negotiations/{pid}"
    # Nothing to counter before the peer offered.
    assert consumer.call("POST", f"{path}/counter").status_code == 409
    offer = {"@id": "offer-ds-1", "@type": "Offer", "target": "ds-1"}
    assert _post(callback, "offers", "ContractOfferMessage", pid, offer=offer).status_code == 200
    countered = consumer.call("POST", f"{path}/counter", json={"offer_id": "offer-ds-2"})
    assert countered.status_code == 200, countered.text
    assert countered.json()["state"] == "REQUESTED"
    (request,) = provider.bodies("/negotiations/prov-1/request")
    assert request["@type"] == "ContractRequestMessage"
    assert (request["providerPid"], request["consumerPid"]) == ("prov-1", pid)
    assert request["offer"]["@id"] == "offer-ds-2" and request["offer"]["target"] == "ds-1"
    exported = entries(side.export(tmp_path / "export"))
    sent = [e["data"] for e in exported if e["type"] == "federation.sent"]
    assert sent[-1]["step"] == "counter" and sent[-1]["offer"] == "offer-ds-2"
    # Once countered, only the peer moves: a second counter is refused here, unsent.
    assert consumer.call("POST", f"{path}/counter").status_code == 409
    assert len(provider.bodies("/negotiations/prov-1/request")) == 1
    again = _post(callback, "offers", "ContractOfferMessage", pid, offer=offer)
    assert again.status_code == 200, again.text
    assert consumer.call("GET", path).json()["state"] == "OFFERED"


def test_a_callback_without_the_process_key_is_refused_and_recorded(gateway_and_provider, tmp_path):
    side, provider = gateway_and_provider
    consumer, process, callback = _setup(side, provider)
    pid = process["consumer_pid"]
    base = callback.rsplit("/k/", 1)[0]
    wrong = _post(f"{base}/k/not-the-key", "termination", "ContractNegotiationTerminationMessage",
                  pid)  # fmt: skip
    assert wrong.status_code == 401, wrong.text
    # A dsp peer has no keys: a callback on the dsgw path (a signed token) is no way in either.
    unkeyed = _post(base, "termination", "ContractNegotiationTerminationMessage", pid)
    assert unkeyed.status_code == 401, unkeyed.text
    state = httpx.get(f"{base}/k/not-the-key/negotiations/{pid}", timeout=30)
    assert state.status_code == 401
    path = f"/federation/consumer/negotiations/{pid}"
    assert consumer.call("GET", path).json()["state"] == "REQUESTED"
    recorded = [
        e for e in entries(side.export(tmp_path / "export"))
        if e["type"] == "dsp.peer-refused" and e["data"]["reason"] == "bad-callback-key"
    ]  # fmt: skip
    assert len(recorded) == 2 and all("not-the-key" not in e["data"]["path"] for e in recorded)
    # A token claiming the dsp peer's id is no way in on the provider side either.
    token = sign_token(Signer.generate(), issuer=provider.url, audience=side.url,
                       participant_id=consumer.id)  # fmt: skip
    catalog = httpx.post(
        f"{side.url}{DSP}/catalog/request",
        json={"@context": CONTEXT, "@type": "CatalogRequestMessage"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert catalog.status_code == 401 and catalog.json()["refusal"] == "not-dsgw-peer"
    # With its key, the peer's termination is taken.
    ended = _post(callback, "termination", "ContractNegotiationTerminationMessage", pid)
    assert ended.status_code == 200, ended.text
    assert consumer.call("GET", path).json()["state"] == "TERMINATED"


def _agree(consumer, callback: str, pid: str) -> None:
    """Take negotiation `pid` to FINALIZED: the peer's agreement agr-1, our verification, its
    FINALIZED event."""
    agreement = {"@id": "agr-1", "@type": "Agreement", "target": "ds-1"}
    agreed = _post(callback, "agreement", "ContractAgreementMessage", pid, agreement=agreement)
    assert agreed.status_code == 200, agreed.text
    verified = consumer.call("POST", f"/federation/consumer/negotiations/{pid}/verify", json={})
    assert verified.status_code == 200, verified.text
    final = _post(callback, "events", "ContractNegotiationEventMessage", pid, eventType="FINALIZED")
    assert final.status_code == 200, final.text


def test_a_transfer_with_a_dsp_peer_runs_only_under_a_held_agreement_and_in_dsp_order(
    gateway_and_provider,
):
    side, provider = gateway_and_provider
    consumer, process, callback = _setup(side, provider)
    _agree(consumer, callback, process["consumer_pid"])
    initiate = {"providerId": "TCK_PARTICIPANT", "connectorAddress": provider.url,
                "format": "HTTP-PULL"}  # fmt: skip
    unknown = consumer.call(
        "POST", "/federation/initiate/transfers", json={**initiate, "agreementId": "agr-other"}
    )
    assert unknown.status_code == 409, unknown.text
    assert unknown.json()["type"] == "urn:dsgw:problem:no-agreement"
    assert not provider.bodies("/transfers/request")
    made = consumer.call(
        "POST", "/federation/initiate/transfers", json={**initiate, "agreementId": "agr-1"}
    )
    assert made.status_code == 201 and made.json()["state"] == "REQUESTED", made.text
    (request,) = provider.bodies("/transfers/request")
    assert request["agreementId"] == "agr-1"
    tp_callback, pid = request["callbackAddress"], made.json()["consumer_pid"]
    assert tp_callback != callback  # a key of its own

    def send(path: str, type_: str, **members) -> httpx.Response:
        body = {"@context": CONTEXT, "@type": type_, "providerPid": "tp-1", "consumerPid": pid,
                **members}  # fmt: skip
        return httpx.post(f"{tp_callback}/transfers/{pid}/{path}", json=body, timeout=30)

    # A completion or suspension before the start is out of turn.
    assert send("completion", "TransferCompletionMessage").status_code == 409
    assert send("suspension", "TransferSuspensionMessage").status_code == 409
    address = {"@type": "DataAddress", "endpoint": "http://example.com"}  # no token: the TCK's
    started = send("start", "TransferStartMessage", dataAddress=address)
    assert started.status_code == 200, started.text
    path = f"/federation/consumer/transfers/{pid}"
    assert consumer.call("GET", path).json()["state"] == "STARTED"
    suspended = consumer.call("POST", f"{path}/suspend")
    assert suspended.status_code == 200 and suspended.json()["state"] == "SUSPENDED"
    assert provider.bodies("/transfers/tp-1/suspension")
    assert send("completion", "TransferCompletionMessage").status_code == 409
    ended = consumer.call("POST", f"{path}/terminate")
    assert ended.status_code == 200 and ended.json()["state"] == "TERMINATED"
    assert send("start", "TransferStartMessage", dataAddress=address).status_code == 409
    state = httpx.get(f"{tp_callback}/transfers/{pid}", timeout=30)
    assert state.status_code == 200 and state.json()["state"] == "TERMINATED", state.text
