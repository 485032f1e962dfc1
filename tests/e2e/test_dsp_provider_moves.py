"""The provider's moves DSP defines, as merchant features of our API (real OPA, real database):
offers and counter-offers, verification by a DSP connector's message, transfers the provider
starts, completion by message. specs/dsp.md, "The provider's moves"."""

import time

import pytest

from gateway.core.hashing import content_hash
from tests.e2e.test_dsp_bindings import Inbox, contract_request, dsp, message
from tests.e2e.test_transfers import entries, transfer_world
from tests.e2e.world import OFFER

CONNECTOR = "https://connector.example/dsp"
CONSUMER_PID = "urn:uuid:c-1"
TRANSFER_PID = "urn:uuid:t-1"


@pytest.fixture
def world(client, settings):
    return transfer_world(client, settings)


@pytest.fixture
def inbox():
    box = Inbox()
    yield box
    box.close()


def _as_connector(world, status: str = "active") -> None:
    """Register the world's consumer as the participant of a DSP connector (a `kind: dsp`
    peer): it then verifies agreements by message."""
    made = world.admin.call(
        "POST",
        "/peers",
        json={"id": CONNECTOR, "kind": "dsp", "dsp_url": CONNECTOR,
              "participants": [world.consumer.id]},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    if status != "active":
        moved = world.admin.call("POST", f"/peers/{CONNECTOR}/suspend", json={"reason": "test"})
        assert moved.status_code == 200, moved.text


def _message_at(inbox, count: int) -> tuple[str, dict]:
    deadline = time.monotonic() + 10
    while len(inbox.received) < count:
        assert time.monotonic() < deadline, inbox.received
        time.sleep(0.02)
    return inbox.received[count - 1]


def _request(world, inbox, offer_id: str | None = None) -> str:
    offer = offer_id or world.files["offers"][0]["id"]
    body = contract_request(offer, callbackAddress=inbox.url)
    made = dsp(world.consumer, "POST", "/negotiations/request", body)
    assert made.status_code == 201, made.text
    return made.json()["providerPid"]


def _negotiation(world, pid: str) -> dict:
    listed = world.merchant.call("GET", "/federation/negotiations").json()["items"]
    [found] = [n for n in listed if n["provider_pid"] == pid]
    return found


def _agree(world, pid: str):
    document = _negotiation(world, pid)["document"]
    return world.merchant.call(
        "POST",
        f"/federation/negotiations/{pid}/agree",
        json={"signature": world.merchant.sign(document)},
    )


def _event(world, pid: str, event_type: str = "ACCEPTED"):
    body = message(
        "ContractNegotiationEventMessage",
        providerPid=pid,
        consumerPid=CONSUMER_PID,
        eventType=event_type,
    )
    return dsp(world.consumer, "POST", f"/negotiations/{pid}/events", body)


def _verification(pid: str) -> dict:
    return message(
        "ContractAgreementVerificationMessage", providerPid=pid, consumerPid=CONSUMER_PID
    )


def _counter(world, pid: str, offer_id: str):
    body = message(
        "ContractRequestMessage",
        providerPid=pid,
        consumerPid=CONSUMER_PID,
        offer={"@id": offer_id, "@type": "Offer", "permission": [{"action": "use"}]},
    )
    return dsp(world.consumer, "POST", f"/negotiations/{pid}/request", body)


def test_an_offer_accepted_agreed_and_verified_by_a_dsp_connector_finalizes_with_evidence(
    world, gateway, inbox
):
    _as_connector(world)
    pid = _request(world, inbox)
    offered = world.merchant.call("POST", f"/federation/negotiations/{pid}/offer")
    assert offered.status_code == 200, offered.text
    assert offered.json()["state"] == "OFFERED"
    path, offer = _message_at(inbox, 1)
    assert path == f"/negotiations/{CONSUMER_PID}/offers"
    assert offer["@type"] == "ContractOfferMessage"
    assert offer["offer"]["@id"] == world.files["offers"][0]["id"]
    assert offer["offer"]["target"] == world.files["id"]
    assert entries(gateway, "contract.offered")[-1].body["data"]["contract"] == pid
    # The merchant cannot agree over its own open offer: the consumer answers it first.
    assert _agree(world, pid).status_code == 409
    accepted = _event(world, pid)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "ACCEPTED"
    assert entries(gateway, "contract.accepted")[-1].body["data"]["by"] == world.consumer.id
    assert _agree(world, pid).status_code == 200
    verification = _verification(pid)
    verified = dsp(
        world.consumer, "POST", f"/negotiations/{pid}/agreement/verification", verification
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["state"] == "FINALIZED"
    data = entries(gateway, "contract.verified")[-1].body["data"]
    assert data["verified_by"] == "dsp-message" and data["peer"] == CONNECTOR
    assert data["verification_hash"] == content_hash(verification)
    assert entries(gateway, "contract.finalized")[-1].body["data"]["contract"] == pid
    contract = world.consumer.call("GET", f"/contracts/{pid}").json()
    assert contract["signatures"]["consumer"] is None and contract["signatures"]["gateway"]
    path, event = _message_at(inbox, 3)  # the offer, the agreement, then FINALIZED
    assert path == f"/negotiations/{CONSUMER_PID}/events"
    assert event["eventType"] == "FINALIZED"


def test_a_verification_without_signature_is_refused_unless_a_dsp_connector_sends_it(world, inbox):
    pid = _request(world, inbox)
    assert _agree(world, pid).status_code == 200
    path = f"/negotiations/{pid}/agreement/verification"
    # A local consumer keeps its signature: a bare message does not verify for it.
    assert dsp(world.consumer, "POST", path, _verification(pid)).status_code == 400
    # Nobody authenticated: no way in.
    anonymous = world.client.post(f"/dsp/2025-1{path}", json=_verification(pid))
    assert anonymous.status_code == 401
    # A suspended connector's participant verifies nothing by message either.
    _as_connector(world, status="suspended")
    assert dsp(world.consumer, "POST", path, _verification(pid)).status_code == 400
    # Nor does another participant, whoever it is.
    assert dsp(world.stranger, "POST", path, _verification(pid)).status_code == 404
    assert world.consumer.call("GET", f"/contracts/{pid}").json()["state"] == "AGREED"


def test_a_merchant_offers_only_its_products_offers(world, inbox):
    pid = _request(world, inbox)
    path = f"/federation/negotiations/{pid}/offer"
    other = world.publish(offers=[OFFER], name="another product")["offers"][0]["id"]
    refused = world.merchant.call("POST", path, json={"offer_id": other})
    assert refused.status_code == 422, refused.text
    unknown = world.merchant.call("POST", path, json={"offer_id": "off_unknown"})
    assert unknown.status_code == 422, unknown.text
    assert world.stranger.call("POST", path).status_code == 404
    assert world.merchant.call("POST", path, json={"price_fen": 1}).status_code == 422
    assert _negotiation(world, pid)["state"] == "REQUESTED"


def test_a_counter_offer_returns_the_negotiation_to_the_merchant_once(world, gateway, inbox):
    cheaper = world.publish(
        resource={"id": world.files["resource_id"],
                  "authorisation_id": world.files["authorisation_id"]},
        offers=[OFFER, {**OFFER, "price_fen": 1}], name="two offers", delivery_modes=["api"],
    )  # fmt: skip
    first, second = (o["id"] for o in cheaper["offers"])
    pid = _request(world, inbox, first)
    # No counter-offer before the merchant offered.
    assert _counter(world, pid, second).status_code == 400
    assert world.merchant.call("POST", f"/federation/negotiations/{pid}/offer").status_code == 200
    countered = _counter(world, pid, second)
    assert countered.status_code == 200, countered.text
    assert countered.json()["state"] == "REQUESTED"
    data = entries(gateway, "contract.counter_requested")[-1].body["data"]
    assert data["requested_offer"] == second and data["adopted"] is True
    assert _negotiation(world, pid)["offer_id"] == second  # the document is on that offer now
    assert _negotiation(world, pid)["document"]["offer"]["price_fen"] == 1
    # A second counter-offer before the merchant answers is refused.
    assert _counter(world, pid, first).status_code == 400
    ended = world.merchant.call("POST", f"/federation/negotiations/{pid}/terminate")
    assert ended.status_code == 200, ended.text
    path, _ = _message_at(inbox, 2)
    assert path == f"/negotiations/{CONSUMER_PID}/termination"


def test_an_unknown_counter_offer_is_recorded_and_the_terms_stay_the_merchants(
    world, gateway, inbox
):
    pid = _request(world, inbox)
    assert world.merchant.call("POST", f"/federation/negotiations/{pid}/offer").status_code == 200
    assert _counter(world, pid, "urn:their:offer").status_code == 200
    data = entries(gateway, "contract.counter_requested")[-1].body["data"]
    assert data["requested_offer"] == "urn:their:offer" and data["adopted"] is False
    assert _negotiation(world, pid)["offer_id"] == world.files["offers"][0]["id"]


def _provider_start_deal(world) -> dict:
    product = world.publish(
        resource={"id": world.files["resource_id"],
                  "authorisation_id": world.files["authorisation_id"]},
        offers=[{**OFFER, "transfer_start": "provider"}], name="started by the merchant",
        delivery_modes=["api", "file"],
    )  # fmt: skip
    return world.contract(product["offers"][0]["id"])


def _transfer(world, inbox, deal: dict) -> dict:
    body = message(
        "TransferRequestMessage",
        consumerPid=TRANSFER_PID,
        agreementId=deal["id"],
        format="HTTP-PULL",
        callbackAddress=inbox.url,
    )
    made = dsp(world.consumer, "POST", "/transfers/request", body)
    assert made.status_code == 201, made.text
    return made.json()


def _send(world, pid: str, kind: str, path: str):
    body = message(kind, providerPid=pid, consumerPid=TRANSFER_PID)
    return dsp(world.consumer, "POST", f"/transfers/{pid}/{path}", body)


def test_a_transfer_the_provider_starts_stays_requested_until_the_merchant_starts_it(
    world, gateway, inbox
):
    process = _transfer(world, inbox, _provider_start_deal(world))
    pid = process["providerPid"]
    assert process["state"] == "REQUESTED"
    assert entries(gateway, "transfer.requested")[-1].body["data"]["transfer"] == pid
    assert dsp(world.consumer, "GET", f"/transfers/{pid}").json()["state"] == "REQUESTED"
    # The consumer can neither complete, suspend nor start it: only the merchant starts it.
    for kind, path in [
        ("TransferCompletionMessage", "completion"),
        ("TransferSuspensionMessage", "suspension"),
        ("TransferStartMessage", "start"),
    ]:
        assert _send(world, pid, kind, path).status_code == 409, kind
    assert not inbox.received
    assert world.stranger.call("POST", f"/federation/transfers/{pid}/start").status_code == 404
    started = world.merchant.call("POST", f"/federation/transfers/{pid}/start")
    assert started.status_code == 200, started.text
    assert started.json()["state"] == "STARTED"
    data = entries(gateway, "transfer.started")[-1].body["data"]
    assert data["transfer"] == pid and data["by"] == world.merchant.id
    path, start = _message_at(inbox, 1)
    assert path == f"/transfers/{TRANSFER_PID}/start" and start["dataAddress"]["endpoint"]
    for action, state in [
        ("suspend", "SUSPENDED"),
        ("start", "STARTED"),
        ("complete", "COMPLETED"),
    ]:
        moved = world.merchant.call("POST", f"/federation/transfers/{pid}/{action}")
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] == state
    done = entries(gateway, "transfer.marked_completed")[-1].body["data"]
    assert done["transfer"] == pid and done["by"] == world.merchant.id
    _message_at(inbox, 4)
    assert [m["@type"] for _, m in inbox.received[1:4]] == [
        "TransferSuspensionMessage",
        "TransferStartMessage",
        "TransferCompletionMessage",
    ]


def test_a_revoked_contract_does_not_start_a_requested_transfer(world, gateway, inbox):
    deal = _provider_start_deal(world)
    pid = _transfer(world, inbox, deal)["providerPid"]
    revoked = world.merchant.call("POST", f"/contracts/{deal['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    refused = world.merchant.call("POST", f"/federation/transfers/{pid}/start")
    assert 400 <= refused.status_code < 500, refused.text
    assert entries(gateway, "transfer.denied")[-1].body["data"]["transfer"] == pid
    assert dsp(world.consumer, "GET", f"/transfers/{pid}").json()["state"] == "REQUESTED"
    assert not inbox.received


def test_a_consumers_completion_message_completes_a_started_transfer(world, gateway, inbox):
    process = _transfer(world, inbox, world.deal)
    pid = process["providerPid"]
    assert process["state"] == "STARTED"  # the default: decided at once, as before
    done = _send(world, pid, "TransferCompletionMessage", "completion")
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "COMPLETED"
    data = entries(gateway, "transfer.marked_completed")[-1].body["data"]
    assert data["transfer"] == pid and data["by"] == world.consumer.id
    again = _send(world, pid, "TransferCompletionMessage", "completion")
    assert again.status_code == 409


def test_our_api_lets_the_merchant_start_a_requested_transfer_and_the_consumer_pull_it(
    world, gateway
):
    deal = _provider_start_deal(world)
    body = {"contract_id": deal["id"], "purpose": deal["purpose"]}
    made = world.consumer.call("POST", "/transfers", json=body)
    assert made.status_code == 201, made.text
    transfer = made.json()
    assert transfer["state"] == "REQUESTED" and transfer.get("data") is None
    tid = transfer["id"]
    assert world.consumer.call("POST", f"/transfers/{tid}/start").status_code == 403
    assert world.consumer.call("POST", f"/transfers/{tid}/token").status_code == 409
    started = world.merchant.call("POST", f"/transfers/{tid}/start")
    assert started.status_code == 200, started.text
    assert started.json()["state"] == "STARTED"
    assert started.json().get("data") is None  # the data token is the consumer's alone
    token = world.consumer.call("POST", f"/transfers/{tid}/token")
    assert token.status_code == 200, token.text
    data = token.json()["data"]
    pulled = world.client.get(
        data["endpoint"], headers={"Authorization": f"Bearer {data['token']}"}
    )
    assert pulled.status_code == 200
    assert world.consumer.call("GET", f"/transfers/{tid}").json()["state"] == "COMPLETED"
    assert world.merchant.call("POST", f"/transfers/{tid}/complete").status_code == 409
