"""Scale-out on real parts: nginx (deploy/nginx/dsgw.conf.template) in front of two `dsgw serve`
processes on one PostgreSQL database and state folder, and of two OPA replicas loading one
bundle built with `opa build --revision`. Under concurrent exchanges one gateway and one OPA are
killed with SIGKILL; nothing acknowledged is lost, every failure is clean, the quota is exact and
the whole ledger verifies.

nginx is Debian's package, installed by ./deploy/test.sh (deploy/lib.sh `ensure_nginx`). Without
it this test fails, as it does without PostgreSQL or OPA; DSGW_TEST_SKIP_NGINX=1 says explicitly
that a run may skip it instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from gateway.demo import Party
from gateway.policy.opa_process import find_opa, free_port, opa_environment
from gateway.policy.versions import bundle_version_of_dir
from tests.e2e.world import PURPOSE, build_world
from tests.support.serving import Served

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "nginx" / "dsgw.conf.template"
QUOTA_CALLS = 160
THREADS = 8


def _nginx_binary() -> str:
    for candidate in (os.environ.get("DSGW_NGINX_BIN"), shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = (
        "no nginx: ./deploy/test.sh installs Debian's nginx package (deploy/lib.sh ensure_nginx); "
        "or set DSGW_NGINX_BIN"
    )
    if os.environ.get("DSGW_TEST_SKIP_NGINX") == "1":
        pytest.skip(message + " (skipped: DSGW_TEST_SKIP_NGINX=1)")
    pytest.fail(message)


class Nginx:
    """nginx with the deploy/ template, in a private prefix, in the foreground."""

    def __init__(self, prefix: Path, *, gateways: list[int], opas: list[int]) -> None:
        self.binary = _nginx_binary()
        self.port, self.opa_port = free_port(), free_port()
        prefix.mkdir(parents=True)
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / sub).mkdir()
        servers = "\n    ".join
        site = (
            TEMPLATE.read_text(encoding="utf-8")
            .replace("@LISTEN@", f"127.0.0.1:{self.port}")
            .replace("@OPA_LISTEN@", f"127.0.0.1:{self.opa_port}")
            .replace(
                "@GATEWAY_SERVERS@",
                servers(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in gateways),
            )
            .replace(
                "@OPA_SERVERS@",
                servers(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in opas),
            )
        )
        (prefix / "dsgw.conf").write_text(site, encoding="utf-8")
        # As root, the workers run as root too: the prefix is under the test's private tmp.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log warn;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    access_log off;\n"
            f"    client_body_temp_path {prefix}/client_body;\n"
            f"    proxy_temp_path {prefix}/proxy;\n"
            f"    fastcgi_temp_path {prefix}/fastcgi;\n"
            f"    uwsgi_temp_path {prefix}/uwsgi;\n"
            f"    scgi_temp_path {prefix}/scgi;\n"
            f"    include {prefix}/dsgw.conf;\n"
            "}\n",
            encoding="utf-8",
        )
        self.prefix = prefix
        argv = [self.binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        checked = subprocess.run([*argv, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(
            [*argv, "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # Ready when it answers on its OPA listener (the replicas are up before it starts). Not
        # through the gateways' listener: the gateways may not listen yet, and a refused
        # connection marks a server failed for its fail_timeout (5 s), so the first requests
        # after the gateways came up would find no live upstream (502).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.opa_url}/health", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError((prefix / "error.log").read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def opa_url(self) -> str:
        return f"http://127.0.0.1:{self.opa_port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class OpaReplica:
    """`opa run --server` loading one bundle file."""

    def __init__(self, bundle: Path) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [find_opa(), "run", "--server", "--addr", f"127.0.0.1:{self.port}"]
            + ["--log-level", "error", str(bundle)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
            env=opa_environment(),  # as the README's operator's guide runs replicas
        )

    def wait_ready(self) -> OpaReplica:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "opa exited"
            try:
                url = f"http://127.0.0.1:{self.port}/health?bundles"
                if httpx.get(url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("opa replica not healthy")

    def revision(self) -> str:
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/v1/data/dsgw/none?provenance", json={}, timeout=5
        )
        return next(iter(response.json()["provenance"]["bundles"].values()))["revision"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()


class Outcomes:
    """What every exchange attempt under load got back, classified."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: list[dict] = []  # the 200 replies
        self.problems: Counter = Counter()  # (status, problem type)
        self.nginx: Counter = Counter()  # nginx's own 502/503/504 pages
        self.unclean: list[str] = []

    def add(self, response: httpx.Response) -> str | None:
        kind = response.headers.get("content-type", "")
        with self.lock:
            if response.status_code == 200:
                self.acknowledged.append(response.json())
                return None
            if kind.startswith("application/problem+json") and response.status_code != 500:
                problem = response.json()
                self.problems[(response.status_code, problem.get("type"))] += 1
                return problem.get("type")
            if response.status_code in (502, 503, 504) and "nginx" in response.text:
                self.nginx[response.status_code] += 1
                return "nginx"
            self.unclean.append(f"{response.status_code} {kind}: {response.text[:300]}")
            return "unclean"


def _build_bundle(tmp: Path) -> tuple[Path, str]:
    version = bundle_version_of_dir(REPO / "policies")
    bundle = tmp / "bundle.tar.gz"
    built = subprocess.run(
        [find_opa(), "build", "-b", "policies", "--revision", version, "-o", str(bundle)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    return bundle, version


def _all_entries(auditor: Party) -> dict[int, dict]:
    entries: dict[int, dict] = {}
    start = 1
    while True:
        page = auditor.call("GET", "/ledger/entries", params={"start": start, "limit": 1000})
        assert page.status_code == 200, page.text
        found = page.json()
        for entry in found:
            entries[entry["body"]["seq"]] = {**entry["body"], "hash": entry["hash"]}
        if len(found) < 1000:
            return entries
        start += 1000


def test_nginx_two_gateways_two_opa_replicas_lose_nothing_acknowledged_when_one_of_each_dies(
    pg_cluster, tmp_path
):
    _nginx_binary()  # fail (or skip, when allowed) before starting anything
    database = f"s_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(database)
    pg_url = pg_cluster.url(database)
    state = tmp_path / "state"
    bundle, version = _build_bundle(tmp_path)
    opas = [OpaReplica(bundle), OpaReplica(bundle)]
    gateways: list[Served] = []
    nginx = None
    try:
        for opa in opas:
            opa.wait_ready()
        assert [opa.revision() for opa in opas] == [version, version]
        ports = [free_port(), free_port()]
        nginx = Nginx(tmp_path / "nginx", gateways=ports, opas=[o.port for o in opas])
        # One issuer, the public URL (nginx's), for both; the second also finds it recorded.
        common = ("--database-url", pg_url, "--opa-url", nginx.opa_url)
        gateways.append(Served(state, ports[0], *common, "--issuer", nginx.url).wait_ready())
        gateways.append(Served(state, ports[1], *common).wait_ready())

        client = httpx.Client(base_url=nginx.url, timeout=60)
        world = build_world(client, state)
        offer = {"purposes": [PURPOSE], "term": "P1D", "quota_calls": QUOTA_CALLS}
        product = world.publish(offers=[offer])
        contract = world.contract(product["offers"][0]["id"])
        body = {"contract_id": contract["id"], "purpose": PURPOSE}

        outcomes = Outcomes()
        stop = threading.Event()

        def load(n: int) -> None:
            me = Party(httpx.Client(base_url=nginx.url, timeout=60), "c", world.consumer.key,
                       world.consumer.id)  # fmt: skip
            me.token()
            refused_in_a_row = 0
            for i in range(3 * QUOTA_CALLS):
                if stop.is_set() or refused_in_a_row >= 3:
                    return
                # Half the requests carry an Idempotency-Key: nginx may resend those.
                headers = {"Idempotency-Key": f"k-{n}-{i}-{uuid.uuid4().hex}"} if i % 2 else {}
                try:
                    response = me.call("POST", "/exchanges", json=body, headers=headers)
                except httpx.HTTPError as exc:  # nginx itself never goes away
                    with outcomes.lock:
                        outcomes.unclean.append(f"transport: {exc!r}")
                    continue
                outcomes.add(response)
                quota_gone = response.status_code == 403 and "QUOTA_EXHAUSTED" in response.text
                refused_in_a_row = refused_in_a_row + 1 if quota_gone else 0

        threads = [threading.Thread(target=load, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(outcomes.acknowledged) < QUOTA_CALLS // 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(outcomes.acknowledged) >= QUOTA_CALLS // 3, "no load reached the gateways"
        gateways[0].kill()  # SIGKILL, mid-load
        opas[0].stop()  # SIGKILL, mid-load
        killed_at = len(outcomes.acknowledged)
        for thread in threads:
            thread.join(timeout=120)
        stop.set()
        assert not any(t.is_alive() for t in threads)

        # Every failure was clean: a problem+json of the gateway's, or nginx's own 502/503/504.
        assert outcomes.unclean == [], outcomes.unclean[:5]
        print(
            f"\nacknowledged {len(outcomes.acknowledged)} (killed at {killed_at}); "
            f"problems {dict(outcomes.problems)}; nginx {dict(outcomes.nginx)}"
        )
        assert len(outcomes.acknowledged) > killed_at, "nothing acknowledged after the kills"

        # Nothing acknowledged is lost: each 200's receipt is on the ledger, with its hash.
        entries = _all_entries(world.auditor)
        for n, reply in enumerate(outcomes.acknowledged):
            receipt = reply["receipt"]
            entry = entries.get(receipt["seq"])
            assert entry is not None, receipt
            assert entry["hash"] == receipt["hash"] and entry["type"] == "exchange.delivered"
            assert entry["data"]["decision"] == reply["exchange_id"]
            if n % 8 == 0 or n >= killed_at - THREADS:  # and as the consumer's receipt
                served = world.consumer.call("GET", f"/ledger/receipts/{receipt['seq']}")
                assert served.status_code == 200, served.text
                assert served.json()["entry"]["hash"] == receipt["hash"]

        # The quota is exact: the delivered entries of the contract are the quota, no more, and
        # the contract's usage counts exactly them.
        delivered = [
            e
            for e in entries.values()
            if e["type"] == "exchange.delivered" and e["data"]["contract"] == contract["id"]
        ]
        assert len(delivered) == QUOTA_CALLS
        assert len({r["receipt"]["seq"] for r in outcomes.acknowledged}) == len(
            outcomes.acknowledged
        )
        usage = world.consumer.call("GET", f"/contracts/{contract['id']}").json()["usage"]
        assert usage == {
            "calls": QUOTA_CALLS,
            "rows": sum(e["data"]["rows"] for e in delivered),
        }
        # One policy version, the bundle's, whichever replica decided.
        assert {e["data"]["policy_version"] for e in delivered} == {version}
        activated = [e for e in entries.values() if e["type"] == "policy.version-activated"]
        assert {e["data"]["version"] for e in activated} == {version}

        # The whole ledger verifies.
        out = tmp_path / "export"
        exported = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--state", str(state), "ledger", "export"]
            + ["--out", str(out), "--database-url", pg_url],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert exported.returncode == 0, exported.stderr
        verified = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "ledger", "verify", str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        for gateway in gateways:
            gateway.stop()
        if nginx is not None:
            nginx.stop()
        for opa in opas:
            opa.stop()
        pg_cluster.drop_database(database)
