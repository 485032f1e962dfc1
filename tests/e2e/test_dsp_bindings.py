"""The Dataspace Protocol 2025-1 provider bindings end to end (real OPA, both databases):
version discovery, catalogue, negotiation and transfer mapped onto our own objects."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.dsp.models import DSP_CONTEXT
from tests.e2e.test_transfers import entries, transfer_world

DSP = "/dsp/2025-1"


@pytest.fixture
def world(client, settings):
    return transfer_world(client, settings)


def dsp(party, method: str, path: str, body: dict | None = None):
    """Send a DSP request as `party` (its own bearer token)."""
    return party.call(method, f"{DSP}{path}", json=body)


def contract_request(offer_id: str, consumer_pid: str = "urn:uuid:c-1", **more) -> dict:
    return {
        "@context": [DSP_CONTEXT],
        "@type": "ContractRequestMessage",
        "consumerPid": consumer_pid,
        "offer": {"@id": offer_id, "@type": "Offer", "permission": [{"action": "use"}]},
        **more,
    }


def message(type_: str, **members) -> dict:
    return {"@context": [DSP_CONTEXT], "@type": type_, **members}


class Inbox:
    """A DSP consumer's callback endpoint on loopback: it keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.got = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server interface
                size = int(self.headers.get("Content-Length", "0"))
                owner.received.append((self.path, json.loads(self.rfile.read(size))))
                owner.got.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inbox():
    box = Inbox()
    yield box
    box.close()


def test_version_discovery_names_dsp_2025_1_over_https(client):
    found = client.get("/.well-known/dspace-version")
    assert found.status_code == 200
    assert {"version": "2025-1", "path": DSP, "binding": "HTTPS"} in found.json()[
        "protocolVersions"
    ]


def test_the_catalog_lists_listed_products_as_datasets_with_their_offers_as_odrl(world):
    found = dsp(world.consumer, "POST", "/catalog/request", message("CatalogRequestMessage"))
    assert found.status_code == 200, found.text
    catalog = found.json()
    assert catalog["@context"] == [DSP_CONTEXT] and catalog["@type"] == "Catalog"
    datasets = {d["@id"]: d for d in catalog["dataset"]}
    assert world.files["id"] in datasets
    dataset = datasets[world.files["id"]]
    assert [p["@id"] for p in dataset["hasPolicy"]] == [o["id"] for o in world.files["offers"]]
    assert all(p["@type"] == "Offer" and "target" not in p for p in dataset["hasPolicy"])
    assert {d["format"] for d in dataset["distribution"]} == {"HttpData-PULL"}


def test_the_catalog_pages_with_link_headers(world):
    first = dsp(
        world.consumer, "POST", "/catalog/request?limit=1", message("CatalogRequestMessage")
    )
    assert first.status_code == 200, first.text
    assert len(first.json()["dataset"]) == 1
    assert 'rel="next"' in first.headers["Link"] and "offset=1" in first.headers["Link"]
    second = dsp(
        world.consumer,
        "POST",
        "/catalog/request?offset=1&limit=1",
        message("CatalogRequestMessage"),
    )
    assert second.json()["dataset"][0]["@id"] != first.json()["dataset"][0]["@id"]
    assert 'rel="previous"' in second.headers["Link"]


def test_an_unknown_or_draft_dataset_is_a_404_catalog_error(world):
    draft = world.merchant.call(
        "POST",
        "/products",
        json={
            "name": "draft",
            "resource_id": world.resource["id"],
            "authorisation_id": world.authorisation["id"],
            "delivery_modes": ["api"],
            "offers": [{"purposes": ["credit-risk-assessment"], "term": "P1D"}],
        },
    ).json()
    for dataset_id in ("no-such-dataset", draft["id"]):
        found = dsp(world.consumer, "GET", f"/catalog/datasets/{dataset_id}")
        assert found.status_code == 404, found.text
        body = found.json()
        assert body["@type"] == "CatalogError" and body["code"] == "404"
        assert body["type"] == "urn:dsgw:problem:not-found"


def test_dsp_routes_refuse_a_request_without_our_token_with_a_401_dsp_error(client):
    for method, path, kind in [
        ("POST", "/catalog/request", "CatalogError"),
        ("GET", "/negotiations/ctr_x", "ContractNegotiationError"),
        ("POST", "/transfers/request", "TransferError"),
    ]:
        found = client.request(
            method, f"{DSP}{path}", json={}, headers={"Authorization": "Bearer forged"}
        )
        assert found.status_code == 401, found.text
        assert found.json()["@type"] == kind


def test_a_malformed_or_mistyped_message_is_a_400_dsp_error(world):
    for body in (b"{not json", b"[]", json.dumps(message("CatalogRequestMessage")).encode()):
        found = world.consumer.client.post(
            f"{DSP}/negotiations/request",
            content=body,
            headers={
                "Authorization": f"Bearer {world.consumer.token()}",
                "Content-Type": "application/json",
            },
        )
        assert found.status_code == 400, found.text
        assert found.json()["@type"] == "ContractNegotiationError"


def test_a_contract_request_is_our_contract_request_recorded_on_the_ledger(world, gateway):
    offer = world.files["offers"][0]["id"]
    found = dsp(world.consumer, "POST", "/negotiations/request", contract_request(offer))
    assert found.status_code == 201, found.text
    negotiation = found.json()
    assert negotiation["@type"] == "ContractNegotiation" and negotiation["state"] == "REQUESTED"
    assert negotiation["consumerPid"] == "urn:uuid:c-1"
    contract = world.consumer.call("GET", f"/contracts/{negotiation['providerPid']}").json()
    assert contract["state"] == "REQUESTED" and contract["offer_id"] == offer
    requested = entries(gateway, "contract.requested")
    assert requested[-1].body["data"]["contract"] == negotiation["providerPid"]
    again = dsp(world.consumer, "GET", f"/negotiations/{negotiation['providerPid']}")
    assert again.json()["state"] == "REQUESTED"
    # Another participant does not see it.
    assert (
        dsp(world.stranger, "GET", f"/negotiations/{negotiation['providerPid']}").status_code == 404
    )


def test_a_contract_request_for_a_merchant_of_its_own_offer_is_refused_by_our_rules(world):
    offer = world.files["offers"][0]["id"]
    found = dsp(world.merchant, "POST", "/negotiations/request", contract_request(offer))
    assert found.status_code == 403, found.text  # the merchant has no consumer role
    assert found.json()["@type"] == "ContractNegotiationError"


def test_termination_ends_a_negotiation_but_not_a_finalized_agreement(world, gateway):
    offer = world.files["offers"][0]["id"]
    pid = dsp(world.consumer, "POST", "/negotiations/request", contract_request(offer)).json()[
        "providerPid"
    ]
    ended = dsp(
        world.consumer,
        "POST",
        f"/negotiations/{pid}/termination",
        message(
            "ContractNegotiationTerminationMessage",
            providerPid=pid,
            consumerPid="urn:uuid:c-1",
            code="1",
        ),
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["state"] == "TERMINATED"
    assert entries(gateway, "contract.terminated")[-1].body["data"]["contract"] == pid
    finalized = world.deal["id"]  # made through our own API: not a DSP negotiation
    assert dsp(world.consumer, "GET", f"/negotiations/{finalized}").status_code == 404


def test_counter_offers_and_accepted_events_are_refused_with_400(world):
    offer = world.files["offers"][0]["id"]
    pid = dsp(world.consumer, "POST", "/negotiations/request", contract_request(offer)).json()[
        "providerPid"
    ]
    counter = dsp(
        world.consumer,
        "POST",
        f"/negotiations/{pid}/request",
        contract_request(offer, providerPid=pid),
    )
    assert counter.status_code == 400, counter.text
    error = counter.json()  # names both process ids, as DSP's ContractNegotiationError does
    assert error["@type"] == "ContractNegotiationError"
    assert (error["providerPid"], error["consumerPid"]) == (pid, "urn:uuid:c-1")
    accepted = dsp(
        world.consumer,
        "POST",
        f"/negotiations/{pid}/events",
        message("ContractNegotiationEventMessage", providerPid=pid, eventType="ACCEPTED"),
    )
    assert accepted.status_code == 400, accepted.text
    verified = dsp(
        world.consumer,
        "POST",
        f"/negotiations/{pid}/agreement/verification",
        message("ContractAgreementVerificationMessage", providerPid=pid),
    )
    assert verified.status_code == 400, verified.text
    assert world.consumer.call("GET", f"/contracts/{pid}").json()["state"] == "REQUESTED"


def transfer_request(world, inbox, agreement: str | None = None, **more) -> dict:
    members = {
        "consumerPid": "urn:uuid:t-1",
        "agreementId": agreement or world.deal["id"],
        "format": "HTTP-PULL",
        "callbackAddress": inbox.url,
        **more,
    }
    return message("TransferRequestMessage", **members)


def _start(inbox, count: int) -> dict:
    """Wait for the `count`-th message the consumer's callback got; return its token and body."""
    deadline = time.monotonic() + 10
    while len(inbox.received) < count:
        assert time.monotonic() < deadline, inbox.received
        time.sleep(0.02)
    path, start = inbox.received[count - 1]
    assert path == "/transfers/urn:uuid:t-1/start"
    assert start["@type"] == "TransferStartMessage"
    return start


def _pull(world, start: dict):
    token = {p["name"]: p["value"] for p in start["dataAddress"]["endpointProperties"]}
    return world.client.get(
        start["dataAddress"]["endpoint"],
        headers={"Authorization": f"Bearer {token['authorization']}"},
    )


def _send(world, pid: str, kind: str, path: str):
    body = message(kind, providerPid=pid, consumerPid="urn:uuid:t-1", code="1")
    return dsp(world.consumer, "POST", f"/transfers/{pid}/{path}", body)


def test_a_transfer_request_is_our_transfer_decided_by_opa_and_its_start_is_sent(
    world, gateway, inbox
):
    found = dsp(world.consumer, "POST", "/transfers/request", transfer_request(world, inbox))
    assert found.status_code == 201, found.text
    process = found.json()
    assert process["@type"] == "TransferProcess" and process["state"] == "STARTED"
    pid = process["providerPid"]
    assert entries(gateway, "transfer.started")[-1].body["data"]["transfer"] == pid
    first = _start(inbox, 1)
    suspended = _send(world, pid, "TransferSuspensionMessage", "suspension")
    assert suspended.status_code == 200, suspended.text
    assert dsp(world.consumer, "GET", f"/transfers/{pid}").json()["state"] == "SUSPENDED"
    assert _pull(world, first).status_code == 409  # a suspended transfer refuses its token
    resumed = _send(world, pid, "TransferStartMessage", "start")
    assert resumed.status_code == 200, resumed.text
    pulled = _pull(world, _start(inbox, 2))  # the resume's new token, sent as at the start
    assert pulled.status_code == 200
    assert dsp(world.consumer, "GET", f"/transfers/{pid}").json()["state"] == "COMPLETED"


def test_a_consumer_terminates_a_transfer_and_cannot_complete_it_then(world, gateway, inbox):
    pid = dsp(world.consumer, "POST", "/transfers/request", transfer_request(world, inbox)).json()[
        "providerPid"
    ]
    ended = _send(world, pid, "TransferTerminationMessage", "termination")
    assert ended.status_code == 200, ended.text
    assert ended.json()["state"] == "TERMINATED"
    assert entries(gateway, "transfer.terminated")[-1].body["data"]["transfer"] == pid
    again = _send(world, pid, "TransferSuspensionMessage", "suspension")
    assert again.status_code == 409 and again.json()["@type"] == "TransferError"
    completed = _send(world, pid, "TransferCompletionMessage", "completion")
    assert completed.status_code == 409 and completed.json()["@type"] == "TransferError"


def test_a_transfer_the_policy_denies_over_dsp_is_refused_and_recorded(world, gateway, inbox):
    revoked = world.merchant.call("POST", f"/contracts/{world.deal['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    found = dsp(world.consumer, "POST", "/transfers/request", transfer_request(world, inbox))
    assert 400 <= found.status_code < 500, found.text
    assert found.json()["@type"] == "TransferError"
    assert not inbox.received


def test_a_transfer_under_another_consumers_agreement_does_not_exist(world, inbox):
    found = dsp(world.stranger, "POST", "/transfers/request", transfer_request(world, inbox))
    assert found.status_code == 404, found.text


def test_a_callback_at_an_internal_address_not_allowed_is_refused(world, inbox):
    body = transfer_request(world, inbox, callbackAddress="http://10.1.2.3:8080/cb")
    found = dsp(world.consumer, "POST", "/transfers/request", body)
    assert found.status_code == 400, found.text
    assert "callbackAddress" in found.json()["detail"]


def test_the_merchants_moves_on_dsp_processes_go_through_our_api_and_reach_the_consumer(
    world, gateway, inbox
):
    offer = world.files["offers"][0]["id"]
    body = contract_request(offer, callbackAddress=inbox.url)
    pid = dsp(world.consumer, "POST", "/negotiations/request", body).json()["providerPid"]
    listed = world.merchant.call("GET", "/federation/negotiations?state=REQUESTED").json()
    [mine] = [n for n in listed["items"] if n["provider_pid"] == pid]
    assert world.stranger.call("GET", "/federation/negotiations").json()["items"] == []
    agreed = world.merchant.call(
        "POST",
        f"/federation/negotiations/{pid}/agree",
        json={"signature": world.merchant.sign(mine["document"])},
    )
    assert agreed.status_code == 200, agreed.text
    path, agreement = _message_at(inbox, 1)
    assert path == "/negotiations/urn:uuid:c-1/agreement"
    assert agreement["agreement"]["@type"] == "Agreement"
    assert agreement["agreement"]["assignee"] == world.consumer.id
    assert entries(gateway, "contract.agreed")[-1].body["data"]["contract"] == pid
    ended = world.merchant.call("POST", f"/federation/negotiations/{pid}/terminate")
    assert ended.status_code == 200, ended.text
    assert _message_at(inbox, 2)[0] == "/negotiations/urn:uuid:c-1/termination"

    started = dsp(world.consumer, "POST", "/transfers/request", transfer_request(world, inbox))
    tid = started.json()["providerPid"]
    for action, state in [("suspend", "SUSPENDED"), ("terminate", "TERMINATED")]:
        moved = world.merchant.call("POST", f"/federation/transfers/{tid}/{action}", timeout=20)
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] == state
    kinds = [m["@type"] for _, m in inbox.received[2:]]
    deadline = time.monotonic() + 10
    while len(kinds) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
        kinds = [m["@type"] for _, m in inbox.received[2:]]
    assert kinds == [
        "TransferStartMessage",
        "TransferSuspensionMessage",
        "TransferTerminationMessage",
    ]


def _message_at(inbox, count: int) -> tuple[str, dict]:
    deadline = time.monotonic() + 10
    while len(inbox.received) < count:
        assert time.monotonic() < deadline, inbox.received
        time.sleep(0.02)
    return inbox.received[count - 1]


def test_a_dsp_negotiation_is_finalized_by_the_consumers_signature_over_the_agreement(
    world, gateway, inbox
):
    offer = world.files["offers"][0]["id"]
    body = contract_request(offer, callbackAddress=inbox.url)
    pid = dsp(world.consumer, "POST", "/negotiations/request", body).json()["providerPid"]
    [mine] = [
        n
        for n in world.merchant.call("GET", "/federation/negotiations").json()["items"]
        if n["provider_pid"] == pid
    ]
    signature = world.merchant.sign(mine["document"])
    agreed = world.merchant.call(
        "POST", f"/federation/negotiations/{pid}/agree", json={"signature": signature}
    )
    assert agreed.status_code == 200, agreed.text
    _, agreement = _message_at(inbox, 1)
    document = agreement["agreement"]["https://dsgw.dev/ns/dcat#contract"]["@value"]
    verification = message(
        "ContractAgreementVerificationMessage",
        providerPid=pid,
        consumerPid="urn:uuid:c-1",
        **{"https://dsgw.dev/ns/dcat#signature": world.stranger.sign(document)},
    )
    forged = dsp(
        world.consumer, "POST", f"/negotiations/{pid}/agreement/verification", verification
    )
    assert forged.status_code == 422, forged.text  # another party's key: refused as our API does
    verification["https://dsgw.dev/ns/dcat#signature"] = world.consumer.sign(document)
    verified = dsp(
        world.consumer, "POST", f"/negotiations/{pid}/agreement/verification", verification
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["state"] == "FINALIZED"
    finalized = entries(gateway, "contract.finalized")[-1].body["data"]
    assert finalized["contract"] == pid
    # A finalized agreement is not ended by a DSP termination: the contract API does that.
    ended = dsp(
        world.consumer,
        "POST",
        f"/negotiations/{pid}/termination",
        message(
            "ContractNegotiationTerminationMessage", providerPid=pid, consumerPid="urn:uuid:c-1"
        ),
    )
    assert ended.status_code == 400, ended.text
    assert world.consumer.call("GET", f"/contracts/{pid}").json()["state"] == "FINALIZED"
