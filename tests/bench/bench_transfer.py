"""Benchmark: a large product pulled through a running gateway, end to end over HTTP, against
reading the same source directly, in the same run: a Parquet file (pyarrow) and a table in the
holder's own PostgreSQL database (psycopg COPY).

    .venv/bin/python tests/bench/bench_transfer.py --rows 1000000
    .venv/bin/python tests/bench/bench_transfer.py --rows 1000000,10000000 --formats arrow,jsonl
    .venv/bin/python tests/bench/bench_transfer.py --rows 10000000 --sources postgresql

For each row count it starts a fresh gateway (`dsgw serve`, with its own OPA, SQLite as its own
database) and registers the cast over HTTP with the product (~10 fields, the personal ones
masked by the policy) at each source asked for: `files`, a Parquet file in its state folder;
`postgresql`, table `product` of a second database (`holder`) of a throw-away PostgreSQL
cluster, filled with the same rows (tests/support/dataplane_data.py). For each source and
format it starts a pull transfer (POST /transfers) and drains GET /transfers/{id}/data
(`--client stdlib`: http.client, the default and leanest; `--client httpx`), hashing what
arrives as it arrives; right before, in the same run, a child process reads the same source
directly (pyarrow iter_batches of every column; psycopg's COPY ... TO STDOUT of the table,
drained as bytes). It prints rows/s of both and their ratio (target >= 0.5), the time from the
request to the first byte of the data endpoint's reply (target < 100 ms), that the consumer's
SHA-256 equals the transfer's, the CPU time the gateway process and the client spent per
million rows (user + system, all threads: what a loaded machine does not inflate), and the
gateway process's peak RSS (VmHWM; target < 300 MB and the same at 1M and 10M rows). The
client shares the machine's cores with the gateway, OPA and (for the table) PostgreSQL.
Nothing here asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pyarrow as pa

# The direct read is a plain pyarrow program: pyarrow's own default allocator, read before the
# gateway package makes the system allocator its default (gateway/__init__.py).
PLAIN_POOL = os.environ.get("ARROW_DEFAULT_MEMORY_POOL") or pa.default_memory_pool().backend_name

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script, like the others

from gateway.policy.opa_process import free_port  # noqa: E402
from tests.support.dataplane_data import fill_postgres, write_parquet  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dsgw" / "bench-dataplane"
FORMATS = {
    "arrow": "application/vnd.apache.arrow.stream",
    "jsonl": "application/jsonl",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
FIELDS = [
    {"name": "id"},
    {"name": "name", "personal": True, "kind": "name"},
    {"name": "phone", "personal": True, "kind": "phone"},
    {"name": "email", "personal": True, "kind": "email"},
    {"name": "id_card", "personal": True, "kind": "id_card"},
    {"name": "city"},
    {"name": "amount"},
    {"name": "visits"},
    {"name": "active"},
    {"name": "day"},
]


def _parquet(rows: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"product-{rows}.parquet"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        write_parquet(tmp, rows)
        tmp.rename(path)
    return path


def _direct(*args: str) -> dict:
    """Read a source directly in a child process: ("parquet", path) or ("postgresql",
    conninfo JSON, table)."""
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": PLAIN_POOL}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.dataplane_data", "direct", *args],
        capture_output=True, text=True, cwd=ROOT, check=True, env=env,
    )  # fmt: skip
    return json.loads(proc.stdout.splitlines()[-1])


def _cpu_seconds(pid: int | None = None) -> float:
    """Return the CPU time (user + system, all threads) process `pid` has used (None: this
    one): a figure a loaded machine does not inflate as it does the wall clock."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_mb(pid: int, field: str = "VmHWM") -> float:
    """Return a memory figure of process `pid` (VmHWM: its peak RSS; VmRSS: its RSS now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Gateway:
    """`dsgw serve` on a free port with a state folder of its own (beside the cache)."""

    def __init__(self, parquet: Path) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="bench-transfer-", dir=CACHE))
        data = self.state / "data"
        data.mkdir(parents=True)
        try:
            os.link(parquet, data / "product.parquet")
        except OSError:
            shutil.copyfile(parquet, data / "product.parquet")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DSGW_RATE_LIMITS": "off"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--state", str(self.state), "serve",
             "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemExit("the gateway did not become ready within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.state, ignore_errors=True)


def _world(gw: Gateway):
    """Register the cast; return the world."""
    from tests.e2e.world import build_world

    return build_world(httpx.Client(base_url=gw.url, timeout=600), gw.state)


def _product(world, source: str, address: dict) -> dict:
    """Register the product at `address` (a resource and its product); return the product."""
    from tests.e2e.world import OFFER

    resource = world.add_resource(
        name=f"bench product, {source}",
        domain="finance",
        grade="general",
        level="L2",
        fields=FIELDS,
        data_address=address,
    )
    return world.publish(
        resource=resource,
        offers=[{**OFFER, "quota_rows": None}],
        name=f"bench product, {source}",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["file"],
    )


def _drain_httpx(url: str, token: str, digest) -> tuple[int, float | None, float]:
    """GET `url` with httpx, hashing every chunk as it arrives; return (bytes, first, seconds)."""
    # The client is made before the clock starts: making one (httpx loads its TLS context even
    # for http://) took 30-60 ms here, which is the client's, not the gateway's.
    with httpx.Client(timeout=600) as consumer:
        size, first = 0, None
        t0 = time.perf_counter()
        with consumer.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as reply:
            # Chunks as they arrive: iter_raw(n) would hold them back until n bytes had come,
            # and the "first byte" would be the first n.
            for chunk in reply.iter_raw():
                first = first if first is not None else time.perf_counter() - t0
                digest.update(chunk)
                size += len(chunk)
        return size, first, time.perf_counter() - t0


def _drain_stdlib(url: str, token: str, digest) -> tuple[int, float | None, float]:
    """GET `url` with the standard library's http.client, hashing every chunk as it arrives
    (read1: what one read of the socket gives, up to 1 MiB); return (bytes, first, seconds).
    A lean consumer: httpx parses the body in 64 KiB pieces in Python, and costs the shared
    cores ~0.25 s of CPU per million rows that the gateway then lacks."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    size, first = 0, None
    t0 = time.perf_counter()
    conn.request("GET", parts.path, headers={"Authorization": f"Bearer {token}"})
    reply = conn.getresponse()
    if reply.status != 200:
        raise SystemExit(f"GET {parts.path}: {reply.status} {reply.read()[:500]!r}")
    while chunk := reply.read1(1 << 20):
        first = first if first is not None else time.perf_counter() - t0
        digest.update(chunk)
        size += len(chunk)
    seconds = time.perf_counter() - t0
    conn.close()
    return size, first, seconds


CLIENTS = {"stdlib": _drain_stdlib, "httpx": _drain_httpx}


def _pull(world, contract_id: str, media: str, pid: int, client: str = "stdlib") -> dict:
    started = world.consumer.call(
        "POST",
        "/transfers",
        json={"contract_id": contract_id, "purpose": "credit-risk-assessment", "type": "pull",
              "format": media},
    )  # fmt: skip
    if started.status_code != 201:
        raise SystemExit(f"POST /transfers: {started.status_code} {started.text[:500]}")
    data = started.json()["data"]
    digest = hashlib.sha256()
    cpu0, mine0 = _cpu_seconds(pid), _cpu_seconds()
    size, first, seconds = CLIENTS[client](data["endpoint"], data["token"], digest)
    cpu, mine = _cpu_seconds(pid) - cpu0, _cpu_seconds() - mine0
    done = world.consumer.call("GET", f"/transfers/{started.json()['id']}").json()
    return {
        "rows": done["rows"],
        "bytes": size,
        "seconds": seconds,
        "ttfb_ms": (first or seconds) * 1000,
        "digest_ok": done["sha256"] == digest.hexdigest() and done["state"] == "COMPLETED",
        "masked": done["masked"],
        "cpu": cpu,  # the gateway's CPU seconds during the pull
        "client_cpu": mine,
    }


class Holder:
    """The holder's own PostgreSQL: a throw-away cluster whose database `holder` gets table
    `product` of the bench's rows (refilled for each row count)."""

    def __init__(self) -> None:
        from tests.support.pg import PostgresCluster

        self.cluster = PostgresCluster().start()
        self.cluster.create_database("holder")
        self.conninfo = {"host": self.cluster.host, "port": self.cluster.port,
                         "user": "postgres", "dbname": "holder"}  # fmt: skip
        self.rows = 0

    def fill(self, rows: int) -> None:
        if rows != self.rows:
            t0 = time.perf_counter()
            fill_postgres(self.conninfo, rows)
            self.rows = rows
            print(f"rows={rows:>10,} filled the holder's table in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip

    def address(self) -> dict:
        return {"type": "sql", "url": self.cluster.url("holder"), "table": "product"}

    def stop(self) -> None:
        self.cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1000000", help="row counts, comma-separated")
    parser.add_argument("--formats", default="arrow,jsonl", help=",".join(FORMATS))
    parser.add_argument("--sources", default="files,postgresql", help="files, postgresql")
    parser.add_argument(
        "--client",
        default="stdlib",
        choices=sorted(CLIENTS),
        help="the consumer's HTTP client (default: http.client, the leanest)",
    )
    args = parser.parse_args()
    sources = [s for s in args.sources.split(",") if s]
    print("bench_transfer: pull transfers through a running gateway vs a direct read of the same "
          f"source (pyarrow with its own allocator, {PLAIN_POOL}; psycopg COPY; the gateway: "
          f"{os.environ.get('ARROW_DEFAULT_MEMORY_POOL') or 'system'}); "
          f"the consumer: {args.client}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    holder = Holder() if "postgresql" in sources else None
    try:
        for rows in [int(r) for r in args.rows.split(",")]:
            _run(rows, sources, args.formats.split(","), holder, args.client)
    finally:
        if holder is not None:
            holder.stop()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def _run(
    rows: int, sources: list[str], formats: list[str], holder: Holder | None, client: str
) -> None:
    """One fresh gateway for `rows`: each source, each format; then its peak RSS."""
    path = _parquet(rows)
    if holder is not None:
        holder.fill(rows)
    gw = Gateway(path)
    try:
        started = _status_mb(gw.proc.pid, "VmRSS")
        world = _world(gw)
        products, direct = {}, {}
        if "files" in sources:
            address = {"type": "files", "path": "product.parquet", "format": "parquet"}
            products["files"] = _product(world, "files", address)
            direct["files"] = ("parquet", str(path))
        if holder is not None:
            products["postgresql"] = _product(world, "postgresql", holder.address())
            direct["postgresql"] = ("postgresql", json.dumps(holder.conninfo), "product")
        idle = _status_mb(gw.proc.pid, "VmRSS")
        setup_peak = _status_mb(gw.proc.pid, "VmHWM")
        for source, product in products.items():
            reference = "direct pyarrow read" if source == "files" else "direct psycopg COPY"
            for name in formats:
                contract = world.contract(product["offers"][0]["id"])
                ref = _direct(*direct[source])
                got = _pull(world, contract["id"], FORMATS[name], gw.proc.pid, client)
                ref_rate = ref["rows"] / ref["seconds"]
                rate = got["rows"] / got["seconds"]
                print(
                    f"rows={rows:>10,} {source:>10} -> {name:<7}: gateway {rate:>12,.0f} rows/s "
                    f"({got['bytes'] / got['seconds'] / 2**20:,.0f} MiB/s, TTFB "
                    f"{got['ttfb_ms']:.0f} ms, digest {'ok' if got['digest_ok'] else 'WRONG'}, "
                    f"masked {got['masked']}; CPU per 1M rows: gateway "
                    f"{got['cpu'] / got['rows'] * 1e6:.2f} s, client "
                    f"{got['client_cpu'] / got['rows'] * 1e6:.2f} s) | {reference} "
                    f"{ref_rate:>12,.0f} rows/s | ratio {rate / ref_rate:.2f} (target >= 0.5)",
                    flush=True,
                )
        print(f"rows={rows:>10,} gateway peak RSS (VmHWM) {_status_mb(gw.proc.pid):.0f} MB "
              f"(target < 300, flat in the rows); RSS when ready {started:.0f} MB, after the "
              f"set-up {idle:.0f} MB (peak {setup_peak:.0f} MB)",
              flush=True)  # fmt: skip
    finally:
        gw.stop()


if __name__ == "__main__":
    main()
