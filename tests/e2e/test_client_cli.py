"""`dsgw product draft`, `contract request|sign|list`, `pull`, `exchange` and `trace` against a live
gateway (hypercorn on loopback, the real OPA, each database engine), through gateway.client."""

import hashlib
import json

import httpx
import pytest

from gateway.cli import main
from gateway.client import cli as client_cli
from tests.e2e.test_transfers import transfer_world
from tests.e2e.test_transfers_interrupted import _served
from tests.e2e.world import OFFER, PURPOSE, build_world


@pytest.fixture
def live(settings):
    with _served(settings) as (url, gateway):
        with httpx.Client(base_url=url, timeout=60) as http:
            world = transfer_world(http, settings)
            world.url = url
            world.gateway = gateway
            yield world


def _as(world, party, tmp_path) -> list[str]:
    key = tmp_path / f"{party.id}.jwk"
    key.write_text(json.dumps(party.key.private_jwk()))
    return ["--gateway", world.url, "--participant", party.id, "--key", str(key)]


def _dsgw(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _finalised_with_the_cli(world, tmp_path, capsys) -> str:
    """The consumer requests the file offer, the merchant and the consumer sign: FINALIZED."""
    consumer, merchant = _as(world, world.consumer, tmp_path), _as(world, world.merchant, tmp_path)
    offer = world.files["offers"][0]["id"]
    code, out, err = _dsgw(capsys, "contract", "request", offer, "--purpose", PURPOSE, "--json",
                           *consumer)  # fmt: skip
    assert code == 0, err
    contract = json.loads(out)
    assert contract["state"] == "REQUESTED"
    code, out, err = _dsgw(capsys, "contract", "sign", contract["id"], *merchant)
    assert code == 0, err
    assert "is AGREED: signed as its provider" in out
    code, out, err = _dsgw(capsys, "contract", "sign", contract["id"], *consumer)
    assert code == 0, err
    assert "is FINALIZED: signed as its consumer" in out
    return contract["id"]


def test_a_consumer_requests_signs_and_pulls_with_the_cli_and_the_receipt_verifies(
    live, tmp_path, capsys
):
    contract_id = _finalised_with_the_cli(live, tmp_path, capsys)
    out_file = tmp_path / "residents.csv"
    consumer = _as(live, live.consumer, tmp_path)
    code, out, err = _dsgw(capsys, "pull", contract_id, "--out", str(out_file), "--format", "csv",
                           *consumer)  # fmt: skip
    assert code == 0, err
    digest = hashlib.sha256(out_file.read_bytes()).hexdigest()
    transfers = live.consumer.call("GET", f"/transfers?contract_id={contract_id}").json()["items"]
    assert [t["sha256"] for t in transfers] == [digest]  # the gateway's record of the bytes
    assert f"sha256 {digest}" in out
    assert f"{transfers[0]['rows']} rows, {out_file.stat().st_size} bytes" in out
    seq = transfers[0]["receipt"]["seq"]
    assert f"receipt: entry {seq} (transfer.completed" in out and "verified offline" in out
    assert "138****0000" in out_file.read_text()  # the phone masked as the policy obliged

    code, out, err = _dsgw(capsys, "contract", "list", "--role", "consumer", *consumer)
    assert code == 0, err
    line = next(x for x in out.splitlines() if contract_id in x)
    assert "FINALIZED" in line and f"{transfers[0]['rows']}/1000 rows" in line


def test_a_download_tampered_on_the_way_is_detected_and_not_kept(
    live, tmp_path, capsys, monkeypatch
):
    class Tampering(httpx.HTTPTransport):
        """Changes one byte of every data stream on its way to the consumer."""

        def handle_request(self, request):
            response = super().handle_request(request)
            if not request.url.path.endswith("/data"):
                return response
            body = bytearray(response.read())
            body[len(body) // 2] ^= 0x01
            headers = {k: v for k, v in response.headers.items()
                       if k.lower() not in ("content-length", "transfer-encoding")}  # fmt: skip
            return httpx.Response(response.status_code, headers=headers, content=bytes(body))

    monkeypatch.setattr(
        client_cli, "http_factory", lambda **kw: httpx.Client(transport=Tampering(), **kw)
    )
    out_file = tmp_path / "residents.jsonl"
    code, out, err = _dsgw(capsys, "pull", live.deal["id"], "--out", str(out_file),
                           *_as(live, live.consumer, tmp_path))  # fmt: skip
    assert code == 3, out + err
    assert "FAILED" in err and "check 'digest' failed" in err and "Traceback" not in err
    assert not out_file.exists() and not (tmp_path / "residents.jsonl.part").exists()


def test_a_problem_is_printed_as_a_readable_line_with_a_non_zero_exit(live, tmp_path, capsys):
    consumer = _as(live, live.consumer, tmp_path)
    code, out, err = _dsgw(capsys, "contract", "request", "off_nosuch", "--purpose", PURPOSE,
                           *consumer)  # fmt: skip
    assert code == 1 and out == ""
    assert err.startswith("dsgw contract request: HTTP 404 urn:dsgw:problem:not-found: ")
    assert "Traceback" not in err
    # A denial by the policy: the problem's type and the policy's reason codes, on one line.
    code, out, err = _dsgw(capsys, "exchange", live.deal["id"], "--purpose", "marketing",
                           *consumer)  # fmt: skip
    assert code == 1 and "HTTP 403 urn:dsgw:problem:policy-denied" in err
    assert "PURPOSE_NOT_PERMITTED" in err
    missing = tmp_path / "missing.jwk"
    code, out, err = _dsgw(capsys, "contract", "list", "--gateway", live.url, "--participant",
                           live.consumer.id, "--key", str(missing))  # fmt: skip
    assert code == 2 and "cannot read the private key" in err


def test_a_merchant_drafts_and_submits_a_product_from_a_file(live, tmp_path, capsys):
    product = tmp_path / "product.json"
    product.write_text(json.dumps({
        "name": "residents, by the CLI", "resource_id": live.files["resource_id"],
        "authorisation_id": live.files["authorisation_id"], "delivery_modes": ["api"],
        "offers": [OFFER],
    }))  # fmt: skip
    merchant = _as(live, live.merchant, tmp_path)
    code, out, err = _dsgw(capsys, "product", "draft", "--file", str(product), *merchant)
    assert code == 0, err
    assert " is draft: residents, by the CLI" in out and "grade    general/L3" in out
    assert "completeness" in out
    product_id = out.split()[1]
    code, out, err = _dsgw(capsys, "product", "submit", product_id, *merchant)
    assert code == 0 and f"product {product_id} is review" in out
    # Over the fee cap: the gateway's refusal, readable.
    code, out, err = _dsgw(capsys, "product", "draft", "--name", "dear",
                           "--resource", live.files["resource_id"],
                           "--authorisation", live.files["authorisation_id"],
                           "--delivery", "api", "--purpose", PURPOSE,
                           "--price-fen", str(10**12), *merchant)  # fmt: skip
    assert code == 1 and "HTTP " in err and "Traceback" not in err
    code, out, err = _dsgw(capsys, "product", "draft", "--name", "incomplete", *merchant)
    assert code == 2 and "resource_id (--resource)" in err


def test_an_exchange_prints_its_rows_and_the_auditor_traces_the_contract(live, tmp_path, capsys):
    code, out, err = _dsgw(capsys, "exchange", live.deal["id"], "--limit", "2",
                           *_as(live, live.consumer, tmp_path))  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 2 and "verified offline" in err
    code, out, err = _dsgw(capsys, "trace", "--contract", live.deal["id"],
                           *_as(live, live.auditor, tmp_path))  # fmt: skip
    assert code == 0, err
    kinds = [line.split()[2] for line in out.splitlines()[1:]]
    assert kinds[:3] == ["contract.requested", "contract.agreed", "contract.verified"]
    assert "exchange.delivered" in kinds
    code, out, err = _dsgw(capsys, "trace", "--product", live.files["id"],
                           *_as(live, live.auditor, tmp_path))  # fmt: skip
    assert code == 0, err
    kinds = [line.split()[2] for line in out.splitlines()[1:]]
    assert kinds[:3] == ["product.drafted", "product.submitted", "product.listed"]
    assert "contract.requested" in kinds  # the contract on it names the product too
    code, out, err = _dsgw(capsys, "trace", "--contract", live.deal["id"],
                           *_as(live, live.consumer, tmp_path))  # fmt: skip
    assert code == 1 and "HTTP 403" in err  # the ledger's entries are the auditors' to read


def test_get_contracts_lists_only_the_callers_own_with_usage_beside_quota(client, settings):
    world = build_world(client, settings.state_dir)
    offer = world.product["offers"][0]["id"]
    running = world.contract(offer)
    pulled = world.consumer.call(
        "POST", "/exchanges", json={"contract_id": running["id"], "purpose": PURPOSE, "limit": 2}
    )
    assert pulled.status_code == 200, pulled.text
    asked = world.consumer.call("POST", "/contracts", json={"offer_id": offer, "purpose": PURPOSE})
    asked = asked.json()

    def ids(party, query=""):
        response = party.call("GET", f"/contracts{query}")
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()]

    assert ids(world.consumer) == [asked["id"], running["id"]]  # newest first
    mine = world.consumer.call("GET", "/contracts?state=FINALIZED").json()
    assert [c["id"] for c in mine] == [running["id"]]
    assert mine[0]["usage"] == {"rows": 2, "calls": 1}
    assert mine[0]["quota"] == {"rows": OFFER["quota_rows"], "calls": None}
    assert ids(world.merchant, "?role=provider") == [asked["id"], running["id"]]
    assert ids(world.merchant, "?role=consumer") == []
    assert ids(world.holder, "?role=holder") == [asked["id"], running["id"]]
    stranger = world.register("stranger", ["consumer"])
    assert ids(stranger) == []
    assert set(ids(world.auditor)) >= {asked["id"], running["id"]}
    for query in ("?role=admin", "?state=DONE", "?limit=0", "?offset=-1"):
        assert world.consumer.call("GET", f"/contracts{query}").status_code == 422, query
