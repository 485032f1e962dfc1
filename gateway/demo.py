"""`dsgw demo`: the whole story over HTTP, printed step by step.

A holder registers graded data, authorises an operator that publishes it as a product; a consumer
authenticates with private_key_jwt, contracts for an offer, pulls masked rows; three requests are
denied with their reasons; an auditor exports the ledger over the API and verifies it offline.
It leaves the participants' private keys and the ids it made in `.dsgw/demo/<time>/` (also
reachable as `.dsgw/demo/latest/`): `env.sh` there sets them as shell variables for the README's
next steps.
"""

import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt.algorithms import OKPAlgorithm

from contracts import sign_contract
from gateway.auth.cli import TokenRefused, fetch_token
from gateway.core.config import Settings
from gateway.participants import uscc
from gateway.participants.service import PLATFORM_ADMIN_ID
from gateway.policy.opa_process import free_port
from ledger import Signer, load_or_create_signer


class DemoError(RuntimeError):
    """A step did not answer as the story expects."""


def _say(step: str, text: str = "") -> None:
    print(f"\n== {step}" + (f"\n   {text}" if text else ""), flush=True)


def _show(label: str, value: Any) -> None:
    print(f"   {label}: {value}", flush=True)


def random_uscc(rng: random.Random) -> str:
    """Return a valid unified social credit code for a made-up enterprise (工商, 企业)."""
    body = "".join(rng.choice(uscc.CHARSET[:10]) for _ in range(6))
    org = "".join(rng.choice(uscc.CHARSET) for _ in range(9))
    return uscc.complete("91" + body + org)


class Party:
    """A participant the demo acts as: its key, id and access token."""

    def __init__(self, client: httpx.Client, name: str, key: Signer, pid: str | None = None):
        self.client = client
        self.name = name
        self.key = key
        self.id = pid
        self._token: str | None = None
        self._private = OKPAlgorithm.from_jwk(key.private_jwk())

    def assertion(self, *, jti: str | None = None, **override: Any) -> str:
        """Return an RFC 7523 client assertion signed with this party's key."""
        now = int(time.time())
        # The audience is the token endpoint the gateway's metadata names (its configured
        # issuer), whatever address the demo reaches it at.
        meta = self.client.get("/.well-known/oauth-authorization-server")
        token_url = _expect(meta, 200, "authorisation server metadata")["token_endpoint"]
        claims = {
            "iss": self.id,
            "sub": self.id,
            "aud": token_url,
            "iat": now,
            "exp": now + 60,
            "jti": jti or str(uuid.uuid4()),
        }
        claims.update(override)
        return jwt.encode(claims, self._private, algorithm="EdDSA", headers={"kid": self.key.kid})

    def token(self) -> str:
        """Return an access token, getting one with client credentials + private_key_jwt."""
        if self._token is None:
            try:
                self._token = fetch_token(self.client, self.key, self.id)
            except TokenRefused as exc:
                raise DemoError(f"token for {self.name}: {exc}") from None
        return self._token

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request with this party's bearer token (beside any `headers` given)."""
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.token()}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def sign(self, document: dict) -> str:
        return sign_contract(document, self._private, kid=self.key.kid)


def _expect(response: httpx.Response, status: int, what: str) -> dict:
    if response.status_code != status:
        raise DemoError(
            f"{what}: expected HTTP {status}, got {response.status_code}: {response.text[:500]}"
        )
    return response.json()


RESIDENTS = [
    {
        "name": "张伟",
        "phone": "13812345678",
        "id_card": "110101199003074512",
        "district": "海淀",
        "score": 712,
    },
    {
        "name": "王芳",
        "phone": "13987654321",
        "id_card": "110102198512125623",
        "district": "朝阳",
        "score": 655,
    },
    {
        "name": "李娜",
        "phone": "13700001111",
        "id_card": "110105199211301234",
        "district": "东城",
        "score": 690,
    },
    {
        "name": "刘洋",
        "phone": "13611112222",
        "id_card": "110106198807085432",
        "district": "西城",
        "score": 741,
    },
    {
        "name": "陈静",
        "phone": "13522223333",
        "id_card": "110108199512256789",
        "district": "海淀",
        "score": 603,
    },
]
FIELDS = [
    {"name": "name", "description": "resident name", "personal": True},
    {"name": "phone", "description": "mobile phone number", "personal": True},
    {"name": "id_card", "description": "ID-card number", "personal": True, "sensitive": True},
    {"name": "district", "description": "district of residence"},
    {"name": "score", "description": "credit score"},
]


def story(
    client: httpx.Client, admin_key: Signer, workdir: Path, *, data_dir: Path | None = None
) -> dict[str, str]:
    """Run the story against the gateway behind `client`; raise DemoError on any surprise.

    The residents' data is a Parquet file the demo writes into `data_dir` (the gateway's data
    folder, `<state>/data`), registered with a `files` address; without one, or when the
    gateway does not find the file there (it serves another state folder), the rows are posted
    with the registration and kept in the gateway's embedded store.

    Return the ids it made (HOLDER, MERCHANT, CONSUMER, AUDITOR, REG, ..., SEQ) by name.
    """
    rng = random.Random()
    _say("1. health", _expect(client.get("/health"), 200, "health")["status"])

    admin = Party(client, "platform admin", admin_key, PLATFORM_ADMIN_ID)
    parties: dict[str, Party] = {}
    for role, name, roles in [
        ("holder", "市大数据局 (municipal data bureau)", ["holder"]),
        (
            "merchant",
            "城市数据运营有限公司 (authorised operator and data merchant)",
            ["operator", "merchant"],
        ),
        ("consumer", "某某金融科技有限公司 (enterprise consumer)", ["consumer"]),
        ("auditor", "第三方审计 (third-party auditor)", ["auditor"]),
    ]:
        key = load_or_create_signer(workdir / f"{role}.jwk")
        body = {
            "name": name,
            "uscc": random_uscc(rng),
            "roles": roles,
            "region": "domestic",
            "jwks": {"keys": [{k: v for k, v in key.public_jwk().items() if k != "use"}]},
        }
        created = _expect(admin.call("POST", "/participants", json=body), 201, f"register {role}")
        parties[role] = Party(client, name, key, created["id"])
    _say(
        "2. participants registered by the platform admin (each with its own Ed25519 key)",
        f"their private keys: {_shown_path(workdir)}/<role>.jwk (keep them: later steps sign "
        "with them)",
    )
    for role, party in parties.items():
        _show(role, f"{party.id}  {party.name}  key {_shown_path(workdir / f'{role}.jwk')}")
    holder, merchant, consumer, auditor = (
        parties[r] for r in ("holder", "merchant", "consumer", "auditor")
    )

    resource, data_note = _register_residents(holder, data_dir)
    core = _expect(
        holder.call(
            "POST",
            "/resources",
            json={
                "name": "电网调度数据 (grid dispatch data)",
                "domain": "energy/grid",
                "grade": "core",
                "fields": [{"name": "substation"}, {"name": "load_mw"}],
                "rows": [{"substation": "北郊站", "load_mw": 812}],
            },
        ),
        201,
        "register core resource",
    )
    registrations = [resource["registration"]["id"], core["registration"]["id"]]
    resource, core = (register_resource(client, admin, holder, r) for r in (resource, core))
    _say(
        "3. holder registers (登记) a general/L3 resource with personal fields, and a core one: "
        "applied, accepted, reviewed, publicised (1 s objection window), coded"
    )
    _show(
        "resource",
        f"{resource['id']} code {resource['code']} "
        f"grade={resource['grade']}/{resource['level']} "
        f"personal={resource['personal_information']} "
        f"sensitive={resource['sensitive_personal_information']}",
    )
    _show("data", data_note)
    _show("core resource", f"{core['id']} code {core['code']} grade={core['grade']}")
    _show("registrations", f"{registrations[0]} (resource), {registrations[1]} (core resource)")

    authorisation = _expect(
        holder.call(
            "POST",
            "/authorisations",
            json={
                "operator_id": merchant.id,
                "resource_ids": [resource["id"], core["id"]],
                "not_after": "2099-12-31T00:00:00Z",
                "fee_cap_fen": 500_000,
            },
        ),
        201,
        "authorise operator",
    )
    _say(
        "4. holder authorises the operator (授权运营)",
        f"{authorisation['id']} fee cap 5000.00 yuan",
    )

    offer_terms = {
        "purposes": ["credit-risk-assessment"],
        "term": "P30D",
        "quota_rows": 1000,
        "price_fen": 120_000,
    }
    product = _expect(
        merchant.call(
            "POST",
            "/products",
            json={
                "name": "居民信用核验 (resident credit check)",
                "resource_id": resource["id"],
                "authorisation_id": authorisation["id"],
                "delivery_modes": ["api"],
                "offers": [offer_terms, {**offer_terms, "term": "PT2S", "price_fen": 0}],
            },
        ),
        201,
        "publish product",
    )
    core_product = _expect(
        merchant.call(
            "POST",
            "/products",
            json={
                "name": "电网负荷 (grid load)",
                "resource_id": core["id"],
                "authorisation_id": authorisation["id"],
                "delivery_modes": ["api"],
                "offers": [{"purposes": ["grid-research"], "term": "P7D"}],
            },
        ),
        201,
        "publish core product",
    )
    product = _list_product(merchant, admin, product)
    core_product = _list_product(merchant, admin, core_product)
    main_offer, trial_offer = product["offers"]
    _say(
        "5. merchant drafts the product with its offers (ODRL) and submits it; "
        "the platform admin reviews (合规评估) and lists it"
    )
    _show(
        "product",
        f"{product['id']} offers {main_offer['id']} (30 days, 1000 rows) and "
        f"{trial_offer['id']} (2-second trial)",
    )

    consumer.token()
    _say("6. consumer gets an access token (client credentials, private_key_jwt)")

    contract = _contract(consumer, merchant, main_offer["id"], "credit-risk-assessment")
    _say("7. contract requested, agreed and signed by both parties, countersigned by the gateway")
    _show(
        "contract", f"{contract['id']} {contract['state']} hash {contract['document_hash'][:16]}…"
    )

    pulled = _expect(
        consumer.call(
            "POST",
            "/exchanges",
            json={
                "contract_id": contract["id"],
                "purpose": "credit-risk-assessment",
            },
        ),
        200,
        "pull rows",
    )
    _say("8. consumer pulls rows: personal fields masked as the policy obliges")
    _show("masked", pulled["masked"])
    for row in pulled["rows"][:3]:
        _show("row", {k: v for k, v in row.items() if k != "_watermark"})
    seq = pulled["receipt"]["seq"]
    _show(
        "receipt",
        f"seq {seq} (GET /ledger/receipts/{seq}), hash {pulled['receipt']['hash'][:16]}…",
    )

    pulled_file = streamed_pull(
        client, admin, merchant, consumer, resource["id"], authorisation["id"]
    )
    pushed_transfer(client, consumer, pulled_file["contract_id"])

    _say("9. three requests denied, each with its reason")
    denied = consumer.call(
        "POST", "/exchanges", json={"contract_id": contract["id"], "purpose": "marketing"}
    )
    _show_denial("purpose not in the contract", denied, "PURPOSE_NOT_PERMITTED")
    core_contract = _contract(consumer, merchant, core_product["offers"][0]["id"], "grid-research")
    denied = consumer.call(
        "POST", "/exchanges", json={"contract_id": core_contract["id"], "purpose": "grid-research"}
    )
    _show_denial("core data", denied, "CORE_DATA_NEVER_LEAVES")
    trial = _contract(consumer, merchant, trial_offer["id"], "credit-risk-assessment")
    _wait_past(client, trial["not_after"])
    denied = consumer.call(
        "POST", "/exchanges", json={"contract_id": trial["id"], "purpose": "credit-risk-assessment"}
    )
    _show_denial("contract term ended", denied, "CONTRACT_EXPIRED")

    _say("10. auditor exports the ledger over the API and verifies it offline")
    export_dir = workdir / "ledger-export"
    manifest = export_over_api(auditor, export_dir)
    _show("exported", f"{manifest['size']} entries to {export_dir}")
    from ledger import verify_export

    report = verify_export(export_dir)
    _show(
        "verified",
        f"{report.size} entries, chain, hashes and signatures OK; head {report.head[:16]}…",
    )
    made = {
        "HOLDER": holder.id,
        "MERCHANT": merchant.id,
        "CONSUMER": consumer.id,
        "AUDITOR": auditor.id,
        "RESOURCE": resource["id"],
        "REG": registrations[0],
        "CORE_REG": registrations[1],
        "AUTHORISATION": authorisation["id"],
        "PRODUCT": product["id"],
        "OFFER": main_offer["id"],
        "CONTRACT": contract["id"],
        "FILE_CONTRACT": pulled_file["contract_id"],  # a contract on file delivery: dsgw pull
        "SEQ": str(seq),
    }
    env = write_env(workdir, made)
    _say(
        "11. what the demo made, for the next steps",
        f"keys   {_shown_path(workdir)}/{{holder,merchant,consumer,auditor}}.jwk",
    )
    _show("ids", ", ".join(f"{name}={value}" for name, value in made.items()))
    _show("shell", f". {_shown_path(env)}   # sets them and KEYS, the keys' folder")
    print("\nDemo complete.", flush=True)
    return made


def write_env(workdir: Path, made: dict[str, str]) -> Path:
    """Write `env.sh` (the ids and KEYS as shell assignments) into `workdir`; point the
    `latest` link beside it at `workdir`; return the path of env.sh."""
    lines = [
        "# written by `dsgw demo`: the ids it made and the folder of its participants' keys",
        f"KEYS={shlex.quote(str(workdir.resolve()))}",
        *(f"{name}={shlex.quote(value)}" for name, value in made.items()),
    ]
    env = workdir / "env.sh"
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")
    latest = workdir.parent / "latest"
    tmp = workdir.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(workdir.name)
    os.replace(tmp, latest)
    return latest / "env.sh"


def _shown_path(path: Path) -> str:
    """Return `path` relative to the current folder when it is inside it, else absolute."""
    path = Path(os.path.abspath(path))  # not resolve(): keep the `latest` link as it is
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


RESIDENTS_FILE = "demo-residents.parquet"


def write_residents(data_dir: Path) -> str:
    """Write the residents as a Parquet file in `data_dir` (atomically); return its name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = data_dir / f".{RESIDENTS_FILE}.{os.getpid()}"
    pq.write_table(pa.Table.from_pylist(RESIDENTS), tmp)
    os.replace(tmp, data_dir / RESIDENTS_FILE)
    return RESIDENTS_FILE


def _register_residents(holder: Party, data_dir: Path | None) -> tuple[dict, str]:
    """Register the residents' resource: from the data folder's file, else with its rows;
    return the registration and a line saying where its data lives."""
    body = {
        "name": "居民信用信息 (resident credit records)",
        "domain": "finance/credit",
        "grade": "general",
        "level": "L3",
        "fields": FIELDS,
        "update_cycle": "monthly",
    }
    if data_dir is not None:
        address = {"type": "files", "path": write_residents(data_dir)}
        applied = holder.call("POST", "/resources", json={**body, "data_address": address})
        if applied.status_code == 201:
            shown = applied.json()["data_address"]
            return applied.json(), (
                f"at its source, a Parquet file in the gateway's data folder: {shown} "
                f"({_shown_path(data_dir / RESIDENTS_FILE)})"
            )
        if applied.status_code != 502:
            return _expect(applied, 201, "register resource"), ""
    registered = _expect(
        holder.call("POST", "/resources", json={**body, "rows": RESIDENTS}),
        201,
        "register resource",
    )
    return registered, (
        f"rows posted with the registration, in the gateway's embedded store: "
        f"{registered['data_address']['type']}, {registered['row_count']} rows"
        + (" (the gateway does not see this state folder's data folder)" if data_dir else "")
    )


def register_resource(client: httpx.Client, admin: Party, holder: Party, applied: dict) -> dict:
    """Walk an applied resource through registration (登记) to coded; return it coded."""
    path = f"/registrations/{applied['registration']['id']}"
    _expect(admin.call("POST", f"{path}/accept"), 200, "accept registration")
    _expect(admin.call("POST", f"{path}/review"), 200, "review registration")
    publicised = _expect(
        admin.call("POST", f"{path}/publicise", json={"window_seconds": 1}),
        200,
        "publicise registration",
    )
    _wait_past(client, publicised["publicity_ends_at"])
    _expect(admin.call("POST", f"{path}/code"), 200, "code registration")
    return _expect(holder.call("GET", f"/resources/{applied['id']}"), 200, "coded resource")


def streamed_pull(
    client: httpx.Client,
    admin: Party,
    merchant: Party,
    consumer: Party,
    resource_id: str,
    authorisation_id: str,
) -> dict:
    """Step 8b: a transfer (DSP) of the resource as a file, pulled as a stream with its data
    token; the consumer recomputes the SHA-256 of what it received and finds the ledger's."""
    import hashlib
    from urllib.parse import urlsplit

    draft = _expect(
        merchant.call(
            "POST",
            "/products",
            json={
                "name": "居民信用文件 (resident credit, as files)",
                "resource_id": resource_id,
                "authorisation_id": authorisation_id,
                "delivery_modes": ["file"],
                "offers": [
                    {
                        "purposes": ["credit-risk-assessment"],
                        "term": "P30D",
                        "quota_rows": 1000,
                        "price_fen": 120_000,
                    }
                ],
            },  # fmt: skip
        ),
        201,
        "publish file product",
    )
    product = _list_product(merchant, admin, draft)
    deal = _contract(consumer, merchant, product["offers"][0]["id"], "credit-risk-assessment")
    started = _expect(
        client.post(
            "/transfers",
            json={
                "contract_id": deal["id"],
                "purpose": "credit-risk-assessment",
                "type": "pull",
                "format": "text/csv",
            },
            headers={
                "Authorization": f"Bearer {consumer.token()}",
                "Idempotency-Key": f"demo-{deal['id']}",
            },
        ),  # fmt: skip
        201,
        "start transfer",
    )
    digest, size = hashlib.sha256(), 0
    with client.stream(
        "GET",
        urlsplit(started["data"]["endpoint"]).path,
        headers={"Authorization": f"Bearer {started['data']['token']}"},
    ) as response:
        if response.status_code != 200:
            raise DemoError(f"pull transfer data: HTTP {response.status_code}")
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    done = _expect(consumer.call("GET", f"/transfers/{started['id']}"), 200, "read transfer")
    if done["state"] != "COMPLETED" or done["sha256"] != digest.hexdigest():
        raise DemoError(f"transfer {done['id']}: {done['state']}, digest {done['sha256']}")
    if done["receipt"]["body"]["data"]["sha256"] != digest.hexdigest():
        raise DemoError("the receipt's digest is not that of the bytes received")
    _say(
        "8b. consumer starts a pull transfer (DSP) of the data as CSV and streams it with its "
        "short-lived data token; it hashes what it received and finds the ledger's digest"
    )
    _show(
        "transfer",
        f"{done['id']} under {deal['id']} {done['state']}: {done['rows']} rows, {size} bytes, "
        f"sha256 {digest.hexdigest()[:16]}… = receipt seq {done['receipt']['seq']}",
    )
    return done


class _Inbox:
    """The consumer's own HTTP endpoint for a push: accepts one PUT with its bearer token and
    keeps the SHA-256 and size of the body it received (chunked or not)."""

    def __init__(self) -> None:
        import hashlib
        import http.server
        import secrets
        import threading

        self.token = secrets.token_urlsafe(24)
        self.received: dict[str, Any] = {}
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: the demo prints what matters
                pass

            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                if self.headers.get("Authorization") != f"Bearer {inbox.token}":
                    self.send_response(401)
                    self.end_headers()
                    return
                digest, size = hashlib.sha256(), 0
                for chunk in self._body():
                    digest.update(chunk)
                    size += len(chunk)
                inbox.received = {"sha256": digest.hexdigest(), "bytes": size, "path": self.path}
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return
                        yield self.rfile.read(size)
                        self.rfile.readline()
                left = int(self.headers.get("Content-Length") or 0)
                while left > 0:
                    chunk = self.rfile.read(min(left, 65536))
                    if not chunk:
                        return
                    left -= len(chunk)
                    yield chunk

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pushed_transfer(client: httpx.Client, consumer: Party, contract_id: str) -> dict | None:
    """Step 8c: a push transfer: the gateway sends the data to the consumer's own endpoint with
    the credentials the consumer gave for this transfer only; the consumer's endpoint hashes
    what arrived and finds the ledger's digest. Skipped for a gateway not on this machine."""
    from urllib.parse import urlsplit

    if urlsplit(str(client.base_url)).hostname not in ("127.0.0.1", "localhost", "::1"):
        _say("8c. push transfer skipped: the gateway cannot reach this machine's endpoint")
        return None
    inbox = _Inbox()
    try:
        asked = client.post(
            "/transfers",
            json={
                "contract_id": contract_id,
                "purpose": "credit-risk-assessment",
                "type": "push",
                "format": "application/jsonl",
                "sink": {
                    "type": "http",
                    "url": f"{inbox.url}/inbox/residents.jsonl",
                    "method": "PUT",
                    "auth": {"kind": "bearer"},
                    "secret": {"token": inbox.token},
                },
            },
            headers={"Authorization": f"Bearer {consumer.token()}"},
        )
        if asked.status_code == 422 and "internal address" in asked.text:
            _say(
                "8c. push transfer skipped: this gateway pushes to no internal address, and "
                "the consumer's endpoint is on loopback (DSGW_SINK_ALLOWED_NETWORKS=127.0.0.0/8 "
                "at the gateway allows it)"
            )
            return None
        started = _expect(asked, 201, "start push transfer")
        done = started
        deadline = time.monotonic() + 60
        while done["state"] not in ("COMPLETED", "TERMINATED") and time.monotonic() < deadline:
            time.sleep(0.2)
            done = _expect(
                consumer.call("GET", f"/transfers/{started['id']}"), 200, "read push transfer"
            )
    finally:
        inbox.close()
    got = inbox.received
    if done["state"] != "COMPLETED" or got.get("sha256") != done["sha256"]:
        raise DemoError(f"push {done['id']}: {done['state']}, received {got}, ledger {done}")
    if inbox.token in str(done):
        raise DemoError("the sink's credential came back in the transfer")
    _say(
        "8c. consumer has the gateway push the data to its own endpoint, with a token for this "
        "transfer only; its endpoint hashes what arrived and finds the ledger's digest"
    )
    _show(
        "push",
        f"{done['id']} {done['state']} to {done['location']}: {done['rows']} rows, "
        f"{got['bytes']} bytes, sha256 {got['sha256'][:16]}… = receipt seq "
        f"{done['receipt']['seq']}",
    )
    return done


def _list_product(merchant: Party, admin: Party, draft: dict) -> dict:
    """Walk a draft product through compliance review to listed; return it."""
    _expect(merchant.call("POST", f"/products/{draft['id']}/submit"), 200, "submit product")
    return _expect(admin.call("POST", f"/products/{draft['id']}/list"), 200, "list product")


def _contract(consumer: Party, merchant: Party, offer_id: str, purpose: str) -> dict:
    requested = _expect(
        consumer.call("POST", "/contracts", json={"offer_id": offer_id, "purpose": purpose}),
        201,
        "request contract",
    )
    agreed = _expect(
        merchant.call(
            "POST",
            f"/contracts/{requested['id']}/agree",
            json={"signature": merchant.sign(requested["document"])},
        ),
        200,
        "provider agrees",
    )
    return _expect(
        consumer.call(
            "POST",
            f"/contracts/{agreed['id']}/verify",
            json={"signature": consumer.sign(agreed["document"])},
        ),
        200,
        "consumer verifies",
    )


def _show_denial(label: str, response: httpx.Response, code: str) -> None:
    body = _expect(response, 403, f"denial ({label})")
    codes = [r["code"] for r in body.get("reasons", [])]
    if code not in codes:
        raise DemoError(f"denial ({label}): expected reason {code}, got {codes}")
    _show(
        f"403 {label}",
        f"{code}: {body['detail']} (decision {body['decision_id']}, "
        f"ledger entry {body['ledger_seq']})",
    )


def _wait_past(client: httpx.Client, moment: str) -> None:
    """Sleep until the gateway's clock is past `moment` (RFC 3339)."""
    from datetime import datetime

    end = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    while True:
        now = datetime.fromisoformat(client.get("/health").json()["time"].replace("Z", "+00:00"))
        if now > end:
            return
        time.sleep(min(0.5, (end - now).total_seconds() + 0.05))


def export_over_api(auditor: Party, out: Path) -> dict:
    """Download every entry, the ledger's key chain and a signed manifest into an export folder.

    The keys come from GET /ledger/keys, every key that ever signed the ledger: after a key
    rotation /.well-known/jwks.json holds only the active key, which did not sign entry 1.
    """
    from ledger.export import write_export

    manifest = _expect(auditor.call("GET", "/ledger/manifest"), 200, "ledger manifest")
    keys = _expect(auditor.client.get("/ledger/keys"), 200, "ledger keys")

    def entries():
        start = 1
        while start <= manifest["size"]:
            page = _expect(
                auditor.call("GET", "/ledger/entries", params={"start": start, "limit": 1000}),
                200,
                "ledger entries",
            )
            if not page:
                return
            for entry in page:
                if entry["body"]["seq"] > manifest["size"]:
                    return
                yield entry
            start = page[-1]["body"]["seq"] + 1

    write_export(out, entries(), keys=keys["keys"], manifest=manifest)
    return manifest


@contextmanager
def local_gateway(state_dir: Path):
    """Start `dsgw serve` (and its OPA) on a free loopback port; yield its URL; stop both."""
    port = free_port()
    # The demo's consumer receives its push on this machine's loopback (step 8c).
    env = {"DSGW_SINK_ALLOWED_NETWORKS": "127.0.0.0/8", **os.environ}
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--state",
            str(state_dir),
            "serve",
            "--port",
            str(port),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                raise DemoError(
                    f"the gateway did not start:\n{log.read().decode(errors='replace')}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise DemoError("the gateway did not answer within 60 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def run_demo(*, url: str | None, state_dir: Path | None) -> int:
    """Run the demo; return the exit code.

    Without `url`, a gateway that `dsgw serve` runs on the same state folder is used (a second
    one beside it would share its SQLite database and keys); if that process does not answer,
    the demo refuses (exit 2) rather than start another.
    """
    settings = Settings.from_env(state_dir=state_dir)
    if not url:
        from gateway.running import serving

        running = serving(settings.state_dir)
        if running is not None:
            try:
                answers = httpx.get(f"{running.url}/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                answers = False
            if not answers:
                print(
                    f"dsgw demo: a gateway (pid {running.pid}) serves the state folder "
                    f"{settings.state_dir} but does not answer at {running.url}/health; "
                    "stop it, or pass --url to name the gateway to use",
                    file=sys.stderr,
                )
                return 2
            print(
                f"using the gateway that already serves {settings.state_dir} at {running.url} "
                f"(pid {running.pid}); pass --url to name another",
                flush=True,
            )
            url = running.url
    settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    workdir = settings.state_dir / "demo" / time.strftime("%Y%m%dT%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    admin_key = load_or_create_signer(settings.admin_key_path)
    data_dir = settings.state_dir / "data"  # the `files` root of a gateway on this state folder
    try:
        if url:
            with httpx.Client(base_url=url, timeout=30) as client:
                story(client, admin_key, workdir, data_dir=data_dir)
        else:
            print(f"starting a gateway and OPA on free loopback ports (state {settings.state_dir})")
            with (
                local_gateway(settings.state_dir) as local,
                httpx.Client(base_url=local, timeout=30) as client,
            ):
                story(client, admin_key, workdir, data_dir=data_dir)
    except (DemoError, httpx.HTTPError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    return 0
