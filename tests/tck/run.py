"""Run the Eclipse DSP TCK (1.0.0-RC6) against a dsgw gateway; exit 1 on any unexpected failure.

    .venv/bin/python tests/tck/run.py [--keep]

1. builds the Java runner (tests/tck/pom.xml; Maven repository cache $DSGW_M2_REPO, by default
   ~/.cache/dsgw/m2: offline once it is filled);
2. starts `dsgw serve` on SQLite with its own OPA (a fresh state folder) and seeds, over its
   API, the cast of tests/e2e/world.py (with the file-delivery product of test_transfers.py): a
   listed product with offers, a FINALIZED contract per transfer test, and the consumer the TCK
   acts as (its access token is the TCK's Authorization header);
3. hands the TCK the fixture ids per test (`CAT_01_01_DATASETID`, `CN_01_01_OFFERID`, …) and
   runs every verification test of the TCK's packages;
   For the consumer-side tests (CN_C, TP_C) it registers the TCK as a "dsp" peer, seeds (with
   a stand-in at the TCK's address, before the TCK starts) the FINALIZED agreements the TP_C
   tests name, points the TCK's initiate URLs at /federation/initiate/…, and plays the
   consumer (Buyer) as it plays the merchant (Seller);
4. prints one line per test and the totals, and fails when a test fails that
   tests/tck/known-failing.txt does not list (each line there: test id, then why), or when a
   listed test passes (the list must then shrink).
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from gateway.demo import FIELDS  # noqa: E402
from tests.e2e.test_transfers import ROWS, transfer_world  # noqa: E402
from tests.e2e.world import OFFER  # noqa: E402

HERE = Path(__file__).resolve().parent
KNOWN_FAILING = HERE / "known-failing.txt"
TEST_ID = re.compile(r"^([A-Z]+(?:_C)?:\d\d-\d\d)")
# The TCK's provider-side tests, by the method names its fixture keys are made of.
CATALOG_TESTS = ("CAT_01_01", "CAT_01_02")  # CAT_01_03 wants an unknown id: left unset
NEGOTIATION_TESTS = [f"CN_0{g}_0{i}" for g, n in ((1, 4), (2, 7), (3, 4)) for i in range(1, n + 1)]
# Each transfer test gets an agreement of its own: a contract negotiated to FINALIZED.
TRANSFER_TESTS = [f"TP_0{g}_0{i}" for g, n in ((1, 5), (2, 5), (3, 6)) for i in range(1, n + 1)]
# What the provider (the merchant, through our own API) does in each scenario, as a person at
# the merchant would, in order: (our state it waits for, its move). A negotiation's moves are
# offer, agree, terminate; a transfer's start, suspend, complete, terminate.
NEGOTIATION_MOVES = {
    "CN_01_01": [("REQUESTED", "offer")],
    "CN_01_02": [("REQUESTED", "offer"), ("REQUESTED", "terminate")],
    "CN_01_03": [("REQUESTED", "offer"), ("ACCEPTED", "agree")],
    "CN_01_04": [("REQUESTED", "agree")],
    "CN_02_01": [("REQUESTED", "terminate")],
    "CN_02_03": [("REQUESTED", "agree")],
    "CN_02_04": [("REQUESTED", "offer")],
    "CN_02_05": [("REQUESTED", "offer"), ("OFFERED", "terminate")],
    "CN_02_06": [("REQUESTED", "offer"), ("ACCEPTED", "terminate")],
    "CN_02_07": [("REQUESTED", "agree"), ("FINALIZED", "terminate")],
    "CN_03_01": [("REQUESTED", "agree")],
    "CN_03_02": [("REQUESTED", "offer")],
    "CN_03_03": [("REQUESTED", "offer")],
    "CN_03_04": [("REQUESTED", "offer")],
}
TRANSFER_MOVES = {
    "TP_01_01": [("STARTED", "terminate")],
    "TP_01_02": [("STARTED", "complete")],
    "TP_01_03": [("STARTED", "suspend"), ("SUSPENDED", "terminate")],
    "TP_01_04": [("STARTED", "suspend"), ("SUSPENDED", "start"), ("STARTED", "complete")],
    "TP_01_05": [("STARTED", "terminate")],
}
# The transfer tests whose transfer stays REQUESTED (the merchant never starts it): their
# agreements are on an offer whose transfers the provider starts (`transfer_start: provider`).
PROVIDER_STARTS = {"TP_02_05", "TP_03_01", "TP_03_02"}
# The TCK's consumer-side negotiation tests (the TCK is the provider; dsgw negotiates with it
# for the consumer, through /federation): one dataset id each, and what the consumer does.
CONSUMER_NEGOTIATION_TESTS = [
    f"CN_C_0{g}_0{i}" for g, n in ((1, 4), (2, 6), (3, 6)) for i in range(1, n + 1)
]
CONSUMER_MOVES = {  # test: {our state: the consumer's move}
    "CN_C_01_01": {"OFFERED": "accept", "AGREED": "verify"},
    "CN_C_01_02": {"OFFERED": "counter"},
    "CN_C_01_03": {"OFFERED": "terminate"},
    "CN_C_01_04": {"AGREED": "verify"},
    "CN_C_02_02": {"REQUESTED": "terminate"},
    "CN_C_02_03": {"AGREED": "terminate"},
    "CN_C_02_05": {"OFFERED": "accept"},
    "CN_C_02_06": {"AGREED": "verify"},
    "CN_C_03_04": {"OFFERED": "accept"},
    "CN_C_03_05": {"OFFERED": "accept"},
    "CN_C_03_06": {"OFFERED": "accept"},
}
# The consumer-side transfer tests: each runs under an agreement our consumer holds with the
# TCK's address, seeded before the TCK starts (see StandIn), and what the consumer does.
CONSUMER_TRANSFER_TESTS = [
    f"TP_C_0{g}_0{i}" for g, n in ((1, 5), (2, 5), (3, 6)) for i in range(1, n + 1)
]
CONSUMER_TRANSFER_MOVES = {
    "TP_C_02_01": {"STARTED": "terminate"},
    "TP_C_02_02": {"STARTED": "complete"},
    "TP_C_02_03": {"STARTED": "suspend", "SUSPENDED": "terminate"},
    "TP_C_02_05": {"REQUESTED": "terminate"},
}
TCK_PARTICIPANT = "TCK_PARTICIPANT"  # the TCK's own participant id (its DspConstants)
SETTLE = 1.0  # seconds a process stands before the merchant moves: its last message is out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_runner() -> list[str]:
    """Compile the runner and return the java command line that runs it."""
    mvn = os.environ.get("DSGW_MVN_BIN", "mvn")
    repo = os.environ.get("DSGW_M2_REPO", str(Path.home() / ".cache" / "dsgw" / "m2"))
    args = [
        mvn,
        "-B",
        "-q",
        f"-Dmaven.repo.local={repo}",
        "-f",
        str(HERE / "pom.xml"),
        "compile",
        "dependency:build-classpath",
        f"-Dmdep.outputFile={HERE / 'target' / 'classpath.txt'}",
    ]
    # Offline first (a filled cache needs no network); online when something is missing.
    if subprocess.run([*args[:1], "-o", *args[1:]], capture_output=True).returncode != 0:
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"tck: maven could not build the runner:\n{done.stdout}\n{done.stderr}")
    classpath = (HERE / "target" / "classpath.txt").read_text().strip()
    java = os.environ.get("DSGW_JAVA_BIN", "java")
    return [java, "-cp", f"{HERE / 'target' / 'classes'}:{classpath}", "dsgw.tck.Runner"]


@contextmanager
def serving(state: Path):
    """Start `dsgw serve` (and its own OPA) on a free loopback port, logging to
    <state>/gateway.log; yield its URL; stop it."""
    port = _free_port()
    env = {**os.environ, "DSGW_SINK_ALLOWED_NETWORKS": "127.0.0.0/8"}  # the TCK's callbacks
    log = (state / "gateway.log").open("wb")
    command = [sys.executable, "-m", "gateway.cli", "--state", str(state), "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"tck: the gateway did not start; see {state / 'gateway.log'}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def seed(world) -> tuple[dict[str, str], dict[str, str]]:
    """Publish a product with one offer per negotiation test (and one whose transfers the
    provider starts) and negotiate one FINALIZED contract per transfer test; return
    ({test: offer id}, {test: contract id})."""
    product = world.publish(
        resource=world.files_resource,
        offers=[
            *({**OFFER, "price_fen": 100 + i} for i in range(len(NEGOTIATION_TESTS))),
            {**OFFER, "price_fen": 99, "transfer_start": "provider"},
        ],
        name="DSP negotiation fixtures",
        authorisation_id=world.files_resource["authorisation_id"],
        delivery_modes=["api", "file"],
    )
    ids = [o["id"] for o in product["offers"]]
    offers = dict(zip(NEGOTIATION_TESTS, ids[:-1], strict=True))
    world.negotiation_product = product
    agreements = {
        t: world.contract(ids[-1] if t in PROVIDER_STARTS else world.files["offers"][0]["id"])["id"]
        for t in TRANSFER_TESTS
    }
    return offers, agreements


class Seller(threading.Thread):
    """The provider's person at the merchant: watches its DSP inbox (GET /federation/…) and
    makes each scenario's moves through our API, in order, as anyone at a dsgw merchant would
    (a move waits until its process has stood SETTLE seconds in the state it answers)."""

    def __init__(self, world, offers: dict[str, str], agreements: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.by_offer = {o: t for t, o in offers.items()}
        self.by_contract = {c: t for t, c in agreements.items()}
        self.tests: dict[str, str] = {}  # provider pid: test (a counter-offer may move offers)
        self.next: dict[str, int] = {}  # provider pid: index of its next move
        self.seen: dict[tuple[str, str], float] = {}
        self.stop = threading.Event()
        self.errors: list[str] = []

    def _due(self, pid: str, state: str, moves: list[tuple[str, str]]) -> str | None:
        """Return the process's next move when it is due in `state`, else None."""
        index = self.next.get(pid, 0)
        if index >= len(moves) or moves[index][0] != state:
            return None
        first = self.seen.setdefault((pid, f"{state}#{index}"), time.monotonic())
        if time.monotonic() - first < SETTLE:
            return None
        self.next[pid] = index + 1
        return moves[index][1]

    def _move(self, path: str, **body) -> None:
        answer = self.world.merchant.call("POST", path, json=body or None)
        if answer.status_code != 200:
            self.errors.append(f"{path}: {answer.status_code} {answer.text[:200]}")

    def step(self) -> None:
        merchant = self.world.merchant
        for n in merchant.call("GET", "/federation/negotiations").json()["items"]:
            pid = n["provider_pid"]
            test = self.tests.setdefault(pid, self.by_offer.get(n["offer_id"], ""))
            move = self._due(pid, n["state"], NEGOTIATION_MOVES.get(test, []))
            if move == "agree":
                signature = merchant.sign(n["document"])
                self._move(f"/federation/negotiations/{pid}/agree", signature=signature)
            elif move is not None:
                self._move(f"/federation/negotiations/{pid}/{move}")
        for t in merchant.call("GET", "/federation/transfers").json()["items"]:
            moves = TRANSFER_MOVES.get(self.by_contract.get(t["contract_id"], ""), [])
            move = self._due(t["provider_pid"], t["state"], moves)
            if move is not None:
                self._move(f"/federation/transfers/{t['provider_pid']}/{move}")

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - reported at the end, never hidden
                self.errors.append(repr(exc))


def consumer_dataset(test: str) -> str:
    """The dataset id a consumer-side test negotiates (the TCK's provider takes any)."""
    return f"tck-{test.lower().replace('_', '-')}"


def register_tck_peer(world, callback: str) -> None:
    """Register the TCK as a "dsp" peer at its callback address: a DSP connector, no dsgw
    gateway. It is the provider of the consumer tests (the consumer holds an account there)
    and, in the provider tests, the consumer itself (its participant here, whose access token
    the TCK sends): so it verifies agreements by message, as DSP connectors do."""
    answer = world.admin.call(
        "POST",
        "/peers",
        json={"id": callback, "kind": "dsp", "dsp_url": callback,
              "accounts": {world.consumer.id: TCK_PARTICIPANT},
              "participants": [world.consumer.id]},
    )  # fmt: skip
    if answer.status_code != 201:
        sys.exit(f"tck: could not register the TCK as a peer: {answer.status_code} {answer.text}")


class StandIn(ThreadingHTTPServer):
    """A stand-in for the TCK's provider at the TCK's own address, before the TCK starts: it
    answers the consumer's contract requests (providerPid `seed-<n>`) and verifications, so
    that the harness can seed the FINALIZED agreements the transfer tests run under (the TCK
    names an agreement by id and takes any; dsgw transfers only under one it holds)."""

    def __init__(self, port: int) -> None:
        self.requests: list[dict] = []
        super().__init__(("127.0.0.1", port), _StandInHandler)


class _StandInHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        raw = b""
        if self.path.endswith("/negotiations/request"):
            self.server.requests.append(body)
            raw = json.dumps({
                "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                "@type": "ContractNegotiation", "state": "REQUESTED",
                "providerPid": f"seed-{len(self.server.requests)}",
                "consumerPid": body.get("consumerPid"),
            }).encode()  # fmt: skip
        self.send_response(201 if raw else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args) -> None:
        pass


def seed_consumer_agreements(world, callback: str, port: int) -> dict[str, tuple[str, str]]:
    """Negotiate, for the consumer, one FINALIZED agreement per consumer-side transfer test with
    the TCK's address (the stand-in answering); return {test: (agreement id, consumer_pid)}."""
    stand_in = StandIn(port)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    consumer, seeded = world.consumer, {}
    try:
        for test in CONSUMER_TRANSFER_TESTS:
            made = consumer.call("POST", "/federation/initiate/negotiations", json={
                "connectorAddress": callback, "offerId": f"seed-offer-{test.lower()}",
                "datasetId": f"seed-{test.lower()}",
            })  # fmt: skip
            if made.status_code != 201:
                sys.exit(f"tck: cannot seed {test}'s agreement: {made.status_code} {made.text}")
            pid, address = made.json()["consumer_pid"], stand_in.requests[-1]["callbackAddress"]
            provider_pid, agreement = made.json()["provider_pid"], f"agreement-{test.lower()}"
            base = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                    "providerPid": provider_pid, "consumerPid": pid}  # fmt: skip
            steps = [
                ("agreement", {**base, "@type": "ContractAgreementMessage",
                               "agreement": {"@id": agreement, "@type": "Agreement"}}),
                ("verify", None),
                ("events", {**base, "@type": "ContractNegotiationEventMessage",
                            "eventType": "FINALIZED"}),
            ]  # fmt: skip
            for path, body in steps:
                if body is None:
                    done = consumer.call(
                        "POST", f"/federation/consumer/negotiations/{pid}/verify", json={}
                    )
                else:
                    done = httpx.post(f"{address}/negotiations/{pid}/{path}", json=body, timeout=30)
                if done.status_code != 200:
                    sys.exit(f"tck: seeding {test} ({path}): {done.status_code} {done.text}")
            seeded[test] = (agreement, pid)
    finally:
        stand_in.shutdown()
        stand_in.server_close()
    return seeded


class Buyer(threading.Thread):
    """The consumer's person: watches its federated negotiations (GET /federation/consumer/…)
    and makes each consumer-side scenario's move through our API, as a dsgw consumer would."""

    def __init__(self, world, seeded: dict[str, tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.by_dataset = {consumer_dataset(t): t for t in CONSUMER_NEGOTIATION_TESTS}
        self.by_negotiation = {pid: t for t, (_agreement, pid) in seeded.items()}
        self.seen: dict[tuple[str, str], float] = {}
        self.done: set[tuple[str, str]] = set()
        self.stop = threading.Event()
        self.errors: list[str] = []

    def step(self) -> None:
        consumer = self.world.consumer
        for n in consumer.call("GET", "/federation/consumer/negotiations").json():
            if not n["provider_pid"]:
                continue
            if n["kind"] == "negotiation":
                test = self.by_dataset.get(n["dataset_id"] or "", "")
                move = CONSUMER_MOVES.get(test, {}).get(n["state"])
            else:
                test = self.by_negotiation.get(n["negotiation_pid"] or "", "")
                move = CONSUMER_TRANSFER_MOVES.get(test, {}).get(n["state"])
            key = (n["consumer_pid"], n["state"])
            first = self.seen.setdefault(key, time.monotonic())
            if move is None or key in self.done or time.monotonic() - first < SETTLE:
                continue
            self.done.add(key)
            path = f"/federation/consumer/{n['kind']}s/{n['consumer_pid']}/{move}"
            answer = consumer.call("POST", path, json={} if move == "verify" else None)
            if answer.status_code != 200:
                self.errors.append(f"{path}: {answer.status_code} {answer.text[:200]}")

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - reported at the end, never hidden
                self.errors.append(repr(exc))


def fixtures(
    world,
    url: str,
    callback_port: int,
    offers: dict[str, str],
    agreements: dict[str, str],
    seeded: dict[str, tuple[str, str]],
) -> dict[str, str]:
    """Return the TCK's configuration: where the gateway is, who it is, and the seeded ids."""
    product = world.files  # a listed product with file delivery (transfers need it)
    props = {
        "dataspacetck.launcher": "org.eclipse.dataspacetck.dsp.system.DspSystemLauncher",
        "dataspacetck.dsp.connector.http.url": f"{url}/dsp/2025-1",
        "dataspacetck.dsp.connector.http.base.url": url,
        "dataspacetck.dsp.connector.agent.id": url,
        # The consumer-side triggers (the TCK asks the connector to start a negotiation or a
        # transfer as a consumer, with the TCK as the provider): our federation API, called
        # with the consumer's token (the Authorization header below).
        "dataspacetck.dsp.connector.negotiation.initiate.url": (
            f"{url}/federation/initiate/negotiations"
        ),
        "dataspacetck.dsp.connector.transfer.initiate.url": f"{url}/federation/initiate/transfers",
        "dataspacetck.dsp.connector.http.headers.authorization": (
            f"Bearer {world.consumer.token()}"
        ),
        "dataspacetck.callback.address": f"http://127.0.0.1:{callback_port}",
        "dataspacetck.host": "127.0.0.1",
        "dataspacetck.port": str(callback_port),
        "dataspacetck.dsp.default.wait": os.environ.get("DSGW_TCK_WAIT", "5"),
    }
    for test in CATALOG_TESTS:
        props[f"{test}_DATASETID"] = product["id"]
    for test, offer in offers.items():
        props[f"{test}_DATASETID"] = world.negotiation_product["id"]
        props[f"{test}_OFFERID"] = offer
    for test, agreement in agreements.items():
        props[f"{test}_AGREEMENTID"] = agreement
        props[f"{test}_FORMAT"] = "HTTP-PULL"
    for test in CONSUMER_NEGOTIATION_TESTS:
        props[f"{test}_DATASETID"] = consumer_dataset(test)
    for test, (agreement, _pid) in seeded.items():
        props[f"{test}_AGREEMENTID"] = agreement
        props[f"{test}_FORMAT"] = "HTTP-PULL"
    return props


def known_failing() -> dict[str, str]:
    """Return {test id: why} from known-failing.txt (`#` comments and blank lines skipped)."""
    listed: dict[str, str] = {}
    for line in KNOWN_FAILING.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test, _, why = line.partition(" ")
        if not why.strip():
            sys.exit(f"tck: known-failing.txt lists {test} without a reason")
        listed[test] = why.strip()
    return listed


def judge(results: list[tuple[str, str, str]], listed: dict[str, str]) -> int:
    """Print the totals; return 0 when every failure is listed and every listed test failed."""
    counts = {"PASSED": 0, "FAILED": 0, "SKIPPED": 0}
    unexpected, fixed = [], []
    for status, name, message in results:
        counts[status] = counts.get(status, 0) + 1
        match = TEST_ID.match(name)
        test = match.group(1) if match else name
        if status == "FAILED" and test not in listed:
            unexpected.append(f"{name}: {message}")
        if status == "PASSED" and test in listed:
            fixed.append(test)
    print(
        f"\nDSP TCK: {len(results)} run, {counts['PASSED']} passed, {counts['FAILED']} failed "
        f"({counts['FAILED'] - len(unexpected)} of them listed in known-failing.txt), "
        f"{counts['SKIPPED']} skipped"
    )
    for line in unexpected:
        print(f"  UNEXPECTED FAILURE {line}")
    for test in fixed:
        print(f"  PASSES NOW, remove it from known-failing.txt: {test}")
    return 1 if unexpected or fixed or not results else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    args = parser.parse_args()
    started = time.monotonic()
    command = build_runner()
    state = Path(tempfile.mkdtemp(prefix="dsgw-tck-"))
    with serving(state) as url, httpx.Client(base_url=url, timeout=30) as client:
        world = transfer_world(client, SimpleNamespace(state_dir=state))
        world.files_resource = world.add_resource(
            name="residents (DSP)", domain="finance", grade="general", level="L3", fields=FIELDS,
            rows=ROWS,
        )  # fmt: skip
        offers, agreements = seed(world)
        callback_port = _free_port()
        tck = f"http://127.0.0.1:{callback_port}"
        register_tck_peer(world, tck)
        seeded = seed_consumer_agreements(world, tck, callback_port)
        props = fixtures(world, url, callback_port, offers, agreements, seeded)
        merchant = Seller(world, offers, agreements)
        merchant.start()
        buyer = Buyer(world, seeded)
        buyer.start()
        props_file = state / "tck.properties"
        props_file.write_text(
            "".join(f"{k}={v}\n" for k, v in props.items()).replace("\\", "\\\\"),
            encoding="utf-8",
        )
        out = state / "tck-results.tsv"
        done = subprocess.run([*command, str(props_file), str(out)], cwd=state)
        merchant.stop.set()
        buyer.stop.set()
        merchant.join(5)
        buyer.join(5)
        for error in merchant.errors[:20]:
            print(f"tck: the merchant's move failed: {error}", file=sys.stderr)
        for error in buyer.errors[:20]:
            print(f"tck: the consumer's move failed: {error}", file=sys.stderr)
        if done.returncode != 0 or not out.exists():
            print(f"tck: the runner ended with exit {done.returncode}", file=sys.stderr)
            return 1
        results = [
            tuple((line.split("\t") + ["", ""])[:3])
            for line in out.read_text(encoding="utf-8").splitlines()
            if line
        ]
    if not args.keep:
        subprocess.run(["rm", "-rf", str(state)], check=False)
    rc = judge(results, known_failing())
    print(f"DSP TCK time: {time.monotonic() - started:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
