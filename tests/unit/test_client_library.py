"""gateway.client on its own: what it imports, how it signs in and caches the token, how a problem
becomes one exception, and how a pull's bytes and receipt are checked (with a fake gateway)."""

import ast
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest

from gateway.client import Client, GatewayProblem, VerificationFailed, load_key
from gateway.client.api import names
from gateway.client.auth import TokenSource
from ledger import Signer, build_entry, jwk_thumbprint
from ledger.receipt import build_receipt

CLIENT_DIR = Path(__file__).resolve().parents[2] / "gateway" / "client"
ALLOWED = {"contracts", "ledger", "httpx", "cryptography", "jwt", "gateway"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_client_library_imports_nothing_of_the_gateway_but_itself():
    library = sorted(p for p in CLIENT_DIR.glob("*.py") if p.name != "cli.py")
    assert {p.name for p in library} >= {"__init__.py", "api.py", "auth.py", "errors.py"}
    for path in library:
        for module in _imports(path):
            top = module.split(".")[0]
            if top == "gateway":
                assert module.startswith("gateway.client"), (path.name, module)
            elif top not in sys.stdlib_module_names:
                assert top in ALLOWED, (path.name, module)


def test_importing_the_client_loads_no_server_module():
    code = (
        "import sys, gateway.client\n"
        "bad = sorted(m for m in sys.modules if m.startswith('gateway.')"
        " and not m.startswith('gateway.client'))\n"
        "bad += sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'sqlalchemy', "
        "'starlette', 'authlib', 'structlog', 'opa_client'})\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class FakeGateway:
    """An httpx MockTransport answering the token endpoint and whatever `routes` say."""

    def __init__(self, routes=None):
        self.routes = routes or {}
        self.tokens = 0
        self.assertions = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(200, json={"token_endpoint": "https://gw.example/oauth/token"})
        if path == "/oauth/token":
            self.tokens += 1
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            self.assertions.append(form["client_assertion"])
            return httpx.Response(
                200, json={"access_token": f"tok{self.tokens}", "expires_in": 900}
            )
        answer = self.routes[(request.method, path)]
        return answer(request) if callable(answer) else answer


def _client(fake, key=None) -> Client:
    key = key or Signer.generate()
    http = httpx.Client(base_url="https://gw.example", transport=httpx.MockTransport(fake))
    return Client("https://gw.example", "prt_me", key, http=http)


def test_the_token_is_fetched_with_a_signed_assertion_and_cached_until_near_expiry():
    key = Signer.generate()
    fake = FakeGateway()
    now = [1000.0]
    http = httpx.Client(base_url="https://gw.example", transport=httpx.MockTransport(fake))
    tokens = TokenSource(http, "prt_me", key, monotonic=lambda: now[0])
    assert tokens.token() == "tok1"
    claims = jwt.decode(
        fake.assertions[0],
        jwt.PyJWK(key.public_jwk()).key,
        algorithms=["EdDSA"],
        audience="https://gw.example/oauth/token",
    )
    assert claims["iss"] == claims["sub"] == "prt_me"
    assert jwt.get_unverified_header(fake.assertions[0])["kid"] == key.kid
    now[0] += 800  # within 900 s less the margin: the same token
    assert tokens.token() == "tok1" and fake.tokens == 1
    now[0] += 100  # past expires_in less the margin: a new one
    assert tokens.token() == "tok2" and fake.tokens == 2


def test_a_401_on_a_cached_token_is_retried_once_with_a_new_token():
    seen = []

    def contract(request):
        seen.append(request.headers["Authorization"])
        if len(seen) == 1:
            return httpx.Response(401, json={"type": "urn:dsgw:problem:unauthorized"})
        return httpx.Response(200, json={"id": "ctr_1"})

    fake = FakeGateway({("GET", "/contracts/ctr_1"): contract})
    assert _client(fake).contract("ctr_1") == {"id": "ctr_1"}
    assert seen == ["Bearer tok1", "Bearer tok2"]


def test_a_problem_is_raised_as_one_exception_with_its_members():
    problem = {
        "type": "urn:dsgw:problem:invalid-transition",
        "title": "Invalid transition",
        "status": 409,
        "detail": "contract ctr_1 is FINALIZED",
        "current_state": "FINALIZED",
        "allowed_next_states": ["SUSPENDED", "REVOKED"],
    }
    fake = FakeGateway({("POST", "/contracts/ctr_1/approve"): httpx.Response(
        409, json=problem, headers={"Content-Type": "application/problem+json"})})  # fmt: skip
    with pytest.raises(GatewayProblem) as caught:
        _client(fake).move_contract("ctr_1", "approve")
    exc = caught.value
    assert (exc.type, exc.title, exc.status, exc.detail) == (
        problem["type"], problem["title"], 409, problem["detail"])  # fmt: skip
    assert str(exc) == (
        "HTTP 409 urn:dsgw:problem:invalid-transition: Invalid transition: contract ctr_1 is "
        "FINALIZED (current state FINALIZED; allowed next states: SUSPENDED, REVOKED)"
    )


def test_an_error_that_is_no_problem_still_raises_the_one_exception():
    fake = FakeGateway({("GET", "/contracts/ctr_1"): httpx.Response(502, text="<html>bad")})
    with pytest.raises(GatewayProblem) as caught:
        _client(fake).contract("ctr_1")
    assert caught.value.type == "about:blank" and caught.value.status == 502


def test_a_key_without_its_private_part_is_refused_with_a_reason(tmp_path):
    public = tmp_path / "public.jwk"
    public.write_text(json.dumps(Signer.generate().public_jwk()))
    with pytest.raises(Exception, match="no private part"):
        load_key(public)


def _pull_gateway(data: bytes, recorded: bytes, gateway_key: Signer, tamper_receipt=False):
    """A fake gateway whose pull streams `data` and whose transfer records `recorded`."""
    digest = hashlib.sha256(recorded).hexdigest()
    entry = build_entry(
        seq=7, prev="0" * 64, time=datetime(2026, 12, 1, tzinfo=UTC), type="transfer.completed",
        data={"transfer": "trf_1", "sha256": digest}, signer=gateway_key,
    ).to_json()  # fmt: skip
    receipt = build_receipt(entry, None)
    if tamper_receipt:
        receipt = json.loads(json.dumps(receipt))
        receipt["entry"]["body"]["data"]["rows"] = 99
    transfer = {"id": "trf_1", "state": "COMPLETED", "rows": 2, "bytes": len(recorded),
                "sha256": digest, "receipt": {"seq": 7, **entry}}  # fmt: skip
    started = {
        "id": "trf_1",
        "state": "STARTED",
        "data": {
            "endpoint": "https://elsewhere.example/transfers/trf_1/data",
            "token": "data-token",
        },
    }
    jwks = {"keys": [{**gateway_key.public_jwk(), "kid": jwk_thumbprint(gateway_key.public_jwk())}]}

    def stream(request):
        assert request.headers["Authorization"] == "Bearer data-token"
        return httpx.Response(200, content=data)

    return FakeGateway({
        ("GET", "/contracts/ctr_1"): httpx.Response(200, json={"purpose": "p"}),
        ("POST", "/transfers"): httpx.Response(201, json=started),
        ("GET", "/transfers/trf_1/data"): stream,
        ("GET", "/transfers/trf_1"): httpx.Response(200, json=transfer),
        ("GET", "/ledger/receipts/7"): httpx.Response(200, json=receipt),
        ("GET", "/ledger/keys"): httpx.Response(200, json=jwks),
    })  # fmt: skip


def test_a_pull_writes_the_file_once_digest_and_receipt_check_out(tmp_path):
    key = Signer.generate()
    data = b'{"a":1}\n{"a":2}\n'
    pulled = _client(_pull_gateway(data, data, key)).pull("ctr_1", tmp_path / "out.jsonl")
    assert (tmp_path / "out.jsonl").read_bytes() == data
    assert pulled.sha256 == hashlib.sha256(data).hexdigest() and pulled.bytes == len(data)
    assert pulled.receipt.seq == 7 and pulled.receipt.type == "transfer.completed"


def test_a_pull_whose_bytes_differ_from_the_record_fails_and_leaves_no_file(tmp_path):
    key = Signer.generate()
    fake = _pull_gateway(b'{"a":1}\n{"a":3}\n', b'{"a":1}\n{"a":2}\n', key)
    with pytest.raises(VerificationFailed) as caught:
        _client(fake).pull("ctr_1", tmp_path / "out.jsonl")
    assert caught.value.check == "digest"
    assert list(tmp_path.iterdir()) == []


def test_a_pull_whose_receipt_was_altered_fails_on_the_receipts_hash(tmp_path):
    key = Signer.generate()
    data = b'{"a":1}\n'
    with pytest.raises(VerificationFailed) as caught:
        _client(_pull_gateway(data, data, key, tamper_receipt=True)).pull("ctr_1", tmp_path / "o")
    assert caught.value.check == "hash" and "receipt" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_an_entry_names_an_id_only_as_a_whole_value_anywhere_in_its_data():
    data = {"contract": "ctr_1", "nested": [{"ids": ["prd_9"]}], "note": "about ctr_12"}
    assert names(data, "ctr_1") and names(data, "prd_9")
    assert not names(data, "ctr_12x") and not names(data, "ctr")


def test_only_a_party_signs_and_nothing_is_sent_for_anyone_else():
    contract = {"id": "ctr_1", "provider_id": "prt_p", "consumer_id": "prt_c", "document": {}}
    fake = FakeGateway({("GET", "/contracts/ctr_1"): httpx.Response(200, json=contract)})
    with pytest.raises(GatewayProblem) as caught:
        _client(fake).sign("ctr_1")  # prt_me is neither party
    assert caught.value.status == 403 and "neither the provider nor the consumer" in str(
        caught.value
    )


def test_the_consumer_signs_through_verify_with_a_jws_over_the_canonical_document():
    from contracts import verify_contract_signature

    key = Signer.generate()
    document = {"contract_id": "ctr_1", "purpose": "p", "offer": {"term": "P30D"}}
    contract = {"id": "ctr_1", "provider_id": "prt_p", "consumer_id": "prt_me",
                "document": document}  # fmt: skip
    sent = []

    def verify(request):
        sent.append(json.loads(request.content)["signature"])
        return httpx.Response(200, json={**contract, "state": "FINALIZED"})

    fake = FakeGateway({("GET", "/contracts/ctr_1"): httpx.Response(200, json=contract),
                        ("POST", "/contracts/ctr_1/verify"): verify})  # fmt: skip
    assert _client(fake, key).sign("ctr_1")["state"] == "FINALIZED"
    public = {**key.public_jwk(), "kid": key.kid}
    assert verify_contract_signature(sent[0], document, public)["kid"] == key.kid
