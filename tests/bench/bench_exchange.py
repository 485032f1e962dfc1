"""Benchmark: evidenced exchanges through `dsgw serve`, beside a bare app and OPA alone, one run.

    .venv/bin/python tests/bench/bench_exchange.py [--engines sqlite,postgresql]
        [--concurrency 1,8,32] [--seconds 10] [--workers 1,2,4] [--contracts 4] [--rows 3]

For each engine it starts a real gateway (`dsgw serve`, hypercorn, over HTTP) on its own OPA and,
for PostgreSQL, on a private cluster with pg_stat_statements preloaded; builds the world of the
e2e tests (tests/e2e/world.py) through the API; publishes an offer whose quotas hold far more
than a run can use and negotiates `--contracts` contracts. Then, at each concurrency, one after
the other, wrk (one thread, keep-alive connections) drives for `--seconds` each:

- the gateway: POST /exchanges (round robin over the contracts, `--rows` rows each, a fresh
  token per cell): req/s, p50/p99, errors; CPU seconds per exchange of the gateway's processes
  (/proc utime+stime of `dsgw serve` and its children), of OPA and of the PostgreSQL cluster
  (all its processes), each counted apart; on PostgreSQL, statements per exchange
  (pg_stat_statements: every statement a gateway backend ran, BEGIN/COMMIT included) and
  transactions per exchange (pg_stat_database.xact_commit), and lock waits (pg_stat_activity
  sampled 5 times a second: the largest share of the gateway's backends waiting on a Lock);
- the bare app (tests/bench/_bare_app.py: sync FastAPI under hypercorn, one process) answering
  POST /exchanges with a reply the gateway really gave in this run (same rows, same bytes);
- OPA alone: the decision input the gateway recorded for a real exchange of this run (read back
  with GET /decisions/{id}), POSTed to the same OPA at /v1/data/dsgw/exchange/decision;
- the load generator's ceiling: wrk against OPA's GET /health (a Go server) and the bare app's
  GET /health (the trivial Python endpoint), and wrk's own CPU per request.

Ratios are gateway / bare app and gateway / OPA alone (req/s), same run, same machine. With
`--workers`, PostgreSQL is measured again for each N > 1 with `dsgw serve --workers N` when the
gateway has that option (SQLite: one worker only). Figures only: nothing here is asserted, and
on a machine shared with other work they are noisy (the load average is printed).

wrk is Debian's package `wrk`; when it is missing the benchmark installs it with apt-get (as
root, else through sudo, as deploy/lib.sh does), unless --no-install, which prints how instead.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
# tests/e2e/world.py imports FastAPI's TestClient, which warns about httpx: not ours to act on.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from gateway.policy.opa_process import OpaServer, free_port  # noqa: E402
from tests.e2e.world import PURPOSE, build_world  # noqa: E402

HERE = Path(__file__).resolve().parent
DECISION_PATH = "/v1/data/dsgw/exchange/decision"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Quotas no run can use up: 1,000 exchanges/s for every cell of a long run, per contract.
QUOTA_CALLS = 50_000_000
QUOTA_ROWS = 500_000_000
# A cell's requests that take longer than this count as errors (wrk's "timeout").
WRK_TIMEOUT = "5s"


# -- processes and their CPU ------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """Return (ppid, utime+stime+cutime+cstime in seconds) of a live process, else None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text.rsplit(")", 1)[1].split()
    ticks = sum(int(rest[i]) for i in (11, 12, 13, 14))
    return int(rest[1]), ticks / CLK_TCK


def tree_cpu(roots: list[int]) -> float:
    """Return the CPU seconds of `roots` and all their descendants, reaped children included.

    Each process counts its own time and that of the children it has waited for (cutime,
    cstime), so a backend or worker that exited during a cell still counts, once.
    """
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            got = _stat(int(entry.name))
            if got is not None:
                stats[int(entry.name)] = got
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def _wait_http(url: str, what: str, process: subprocess.Popen, log: Path | None) -> None:
    for _ in range(600):
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise SystemExit(f"{what} exited with {process.returncode} at start:\n{tail}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer {url}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_has_workers() -> bool:
    """Whether `dsgw serve --help` lists --workers."""
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return "--workers" in out


class Gateway:
    """`dsgw serve` on a fixed port and issuer, restartable with another worker count."""

    def __init__(self, state: Path, database_url: str | None, opa_url: str, log: Path) -> None:
        self.state, self.database_url, self.opa_url, self.log = state, database_url, opa_url, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.workers = 0

    def start(self, workers: int = 1) -> None:
        args = [sys.executable, "-m", "gateway.cli", "--state", str(self.state), "serve"]
        args += ["--port", str(self.port), "--opa-url", self.opa_url, "--issuer", self.url]
        if self.database_url:
            args += ["--database-url", self.database_url]
        if workers > 1:
            args += ["--workers", str(workers)]
        # The figures are the exchange path's, not the rate limiter's (on by default).
        env = {**os.environ, "DSGW_RATE_LIMITS": "off"}
        for attempt in range(5):
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=ROOT
                )
            try:
                _wait_http(f"{self.url}/health", "dsgw serve", self.process, self.log)
                break
            except SystemExit:
                # The port of the previous process may linger for a moment: try again.
                if attempt == 4:
                    raise
                time.sleep(1)
        self.workers = workers

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    @property
    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []


def opa_requests(url: str) -> dict[str, float]:
    """Return OPA's count of HTTP requests served so far, by handler and method (/metrics)."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("http_request_duration_seconds_count{"):
            labels, value = line[len("http_request_duration_seconds_count{") :].split("} ")
            tags = {k: v.strip('"') for k, v in (p.split("=", 1) for p in labels.split(","))}
            key = f"{tags['method'].upper()} {tags['handler']}"
            counts[key] = counts.get(key, 0.0) + float(value)
    return counts


# -- the load generator -----------------------------------------------------------------------


def ensure_wrk(install: bool) -> str:
    """Return the wrk binary, installing Debian's package when missing (unless not `install`)."""
    found = shutil.which("wrk")
    if found:
        return found
    how = "apt-get install wrk (Debian's package), as root or with sudo"
    if not install:
        raise SystemExit(f"wrk is not installed: {how}, or run without --no-install")
    print(f"wrk is missing: installing it ({how})", flush=True)
    script = (
        f'. "{ROOT}/deploy/lib.sh"; '
        "dsgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2 || "
        "{ dsgw_as_root apt-get update -q >&2 && "
        "dsgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2; }"
    )
    subprocess.run(["bash", "-c", script], check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(f"could not install wrk: {how}")
    return found


def _lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


LUA_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,' ..
    '"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def lua_script(method: str, path: str, headers: dict[str, str], bodies: list[str]) -> str:
    """Return a wrk script sending `bodies` round robin (one request when one body or none)."""
    head = ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items())
    head = "{" + head
    head += "}"
    if len(bodies) <= 1:
        body = f"wrk.body = {_lua_string(bodies[0])}\n" if bodies else ""
        return (
            f"wrk.method = {_lua_string(method)}\nwrk.path = {_lua_string(path)}\n"
            f"wrk.headers = {head}\n{body}{LUA_DONE}"
        )
    listed = ",\n  ".join(_lua_string(b) for b in bodies)
    return f"""
local bodies = {{
  {listed}
}}
local requests = {{}}
local i = 0
init = function(args)
  for k, b in ipairs(bodies) do
    requests[k] = wrk.format({_lua_string(method)}, {_lua_string(path)}, {head}, b)
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
{LUA_DONE}"""


@dataclass
class Cell:
    """One wrk run against one target: what it did and what it cost."""

    target: str
    concurrency: int
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    wrk_cpu: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # name -> CPU seconds during the cell
    db: dict[str, float] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)  # wrk's: connect, status...
    opa_requests: dict[str, float] = field(default_factory=dict)  # by handler, in the cell
    log: str = ""  # what the gateway's log says about the cell's failures, if any
    # Exchanges the gateway answered in the cell, its log says, counted after it settled: wrk
    # does not count those in flight when it stops, whose statements and CPU are counted.
    answered: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def done(self) -> int:
        """Requests completed: as the gateway's log counts them, else as wrk does."""
        return self.answered or self.requests

    def per_request(self, name: str) -> float:
        """CPU milliseconds of `name` per completed request."""
        return 1000 * self.cpu.get(name, 0.0) / self.done if self.done else 0.0


class Wrk:
    def __init__(self, binary: str, folder: Path) -> None:
        self.binary, self.folder = binary, folder

    def run(
        self,
        target: str,
        url: str,
        script: str,
        concurrency: int,
        seconds: int,
        cpu: dict[str, list[int]] | None = None,
    ) -> Cell:
        """Drive `url` with `script` for `seconds`; count the CPU of the named process trees."""
        path = self.folder / "script.lua"
        path.write_text(script)
        args = [self.binary, "-t1", f"-c{concurrency}", f"-d{seconds}s"]
        args += ["--timeout", WRK_TIMEOUT, "-s", str(path), url]
        cpu = cpu or {}
        before = {name: tree_cpu(pids) for name, pids in cpu.items()}
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cell = Cell(target, concurrency)
        cell.cpu = {name: tree_cpu(pids) - before[name] for name, pids in cpu.items()}
        cell.wrk_cpu = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
        if line is None:
            raise SystemExit(f"wrk gave no figures:\n{out.stdout}\n{out.stderr}")
        got = json.loads(line[len("BENCH ") :])
        cell.requests = int(got["requests"])
        cell.seconds = got["duration_us"] / 1e6
        kinds = ("connect", "read", "write", "status", "timeout")
        cell.error_kinds = {k: int(got[k]) for k in kinds if got[k]}
        cell.errors = sum(cell.error_kinds.values())
        cell.p50_ms, cell.p99_ms = got["p50_us"] / 1000, got["p99_us"] / 1000
        return cell


# -- PostgreSQL: statements, transactions, lock waits -----------------------------------------


class PgProbe:
    """Counts what the gateway's database did during a cell, from the `postgres` database.

    The probe's own connection is to another database than the gateway's, so its statements
    and transactions are not counted with the gateway's.
    """

    def __init__(self, cluster, dbname: str) -> None:
        import psycopg

        self.dbname = dbname
        self.conn = psycopg.connect(
            host=cluster.host, port=cluster.port, user="postgres", dbname="postgres",
            autocommit=True,
        )  # fmt: skip
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.oid = self.conn.execute(
            "SELECT oid FROM pg_database WHERE datname = %s", (dbname,)
        ).fetchone()[0]
        self.postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        self._samples: list[tuple[int, int]] = []
        self.top: list[tuple[str, int]] = []  # the last cell's most frequent statements
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _commits(self) -> int:
        # Statistics reach pg_stat_database when a backend goes idle, at most once a second.
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        return self.conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (self.dbname,),
        ).fetchone()[0]

    def start(self) -> None:
        self.conn.execute("SELECT pg_stat_statements_reset()")
        self._xacts = self._commits()
        self._samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self.conn.info.dsn, autocommit=True) as conn:
            while not self._stop.wait(0.2):
                waiting, backends = conn.execute(
                    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*) "
                    "FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                    (self.dbname,),
                ).fetchone()
                self._samples.append((waiting, backends))

    def stop(self) -> dict[str, float]:
        """Return statements (all and transaction control), transactions, and lock samples."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        time.sleep(1.2)
        rows = self.conn.execute(
            "SELECT query, calls FROM pg_stat_statements WHERE dbid = %s", (self.oid,)
        ).fetchall()
        control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START TRANSACTION")
        statements = sum(calls for _, calls in rows)
        self.top = sorted(rows, key=lambda r: -r[1])[:8]
        tx_control = sum(calls for q, calls in rows if q.strip().upper().startswith(control))
        shares = [w / b for w, b in self._samples if b]
        worst = max(self._samples, key=lambda s: (s[0] / s[1]) if s[1] else 0, default=(0, 0))
        return {
            "statements": statements,
            "tx_control": tx_control,
            "xacts": self._commits() - self._xacts,
            "lock_share_max": max(shares, default=0.0),
            "lock_share_mean": statistics.fmean(shares) if shares else 0.0,
            "lock_worst_waiting": worst[0],
            "lock_worst_backends": worst[1],
            "samples": len(self._samples),
        }

    def close(self) -> None:
        self.conn.close()


# -- one engine -------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the summary: an engine, a worker count, a concurrency."""

    engine: str
    workers: int
    concurrency: int
    gateway: Cell
    bare: Cell | None = None
    opa: Cell | None = None
    ceiling: Cell | None = None
    trivial: Cell | None = None


def _fmt_cell(cell: Cell) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in cell.error_kinds.items())
    return (
        f"{cell.rate:8.0f} req/s  p50 {cell.p50_ms:7.1f} ms  p99 {cell.p99_ms:7.1f} ms  "
        f"errors {cell.errors:5d}{f' ({kinds})' if kinds else ''}  ({cell.requests} in "
        f"{cell.seconds:.1f} s){cell.log}"
        + (" -- STALLED: not one reply in the cell" if not cell.requests else "")
    )


def log_failures(text: str) -> tuple[int, str]:
    """Return the exchanges the gateway's JSON log lines in `text` answered, and what they say
    of failures ('' if none)."""
    statuses: dict[int, int] = {}
    answered = 0
    errors: list[str] = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if event.get("event") == "request" and event.get("path") == "/exchanges":
            status = event.get("status")
            answered += 1
            if status != 200:
                statuses[status] = statuses.get(status, 0) + 1
        elif event.get("level") in ("error", "critical"):
            errors.append(str(event.get("event")))
    if not statuses and not errors:
        return answered, "" if answered else "; gateway log: 0 exchanges answered"
    said = f"; gateway log: {answered} answered, not 200: {statuses}"
    if errors:
        said += f", {len(errors)} error lines (first: {errors[0][:120]!r})"
    return answered, said


def run_engine(engine: str, args, wrk: Wrk, opa: OpaServer, workers_ok: bool) -> list[Row]:
    rows: list[Row] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dsgw-bench-ex-")))
        state = tmp / "state"
        cluster = probe = None
        database_url = None
        if engine == "postgresql":
            from tests.support.pg import PostgresCluster

            cluster = PostgresCluster(settings={"shared_preload_libraries": "pg_stat_statements"})
            stack.enter_context(cluster)
            database_url = cluster.create_database("bench")
        gateway = Gateway(state, database_url, opa.url, tmp / "gateway.log")
        stack.callback(gateway.stop)
        began = time.perf_counter()
        gateway.start()
        client = stack.enter_context(httpx.Client(base_url=gateway.url, timeout=30))
        world = build_world(client, state)
        offer = {
            "purposes": [PURPOSE],
            "term": "P30D",
            "quota_calls": QUOTA_CALLS,
            "quota_rows": QUOTA_ROWS,
        }
        product = world.publish(offers=[offer])
        contracts = [world.contract(product["offers"][0]["id"]) for _ in range(args.contracts)]
        bodies = [
            json.dumps({"contract_id": c["id"], "purpose": PURPOSE, "limit": args.rows})
            for c in contracts
        ]
        reply = world.consumer.call("POST", "/exchanges", content=bodies[0],
                                    headers={"Content-Type": "application/json"})  # fmt: skip
        if reply.status_code != 200:
            raise SystemExit(f"an exchange failed: {reply.status_code} {reply.text[:500]}")
        decision = world.consumer.call("GET", f"/decisions/{reply.json()['exchange_id']}")
        if decision.status_code != 200:
            raise SystemExit(f"reading the decision failed: {decision.text[:500]}")
        decision_body = json.dumps({"input": decision.json()["input"]})
        (tmp / "reply.json").write_bytes(reply.content)
        print(
            f"\n== {engine}: world built, {args.contracts} contracts, {reply.json()['row_count']} "
            f"rows per exchange ({len(reply.content)} bytes), decision input "
            f"{len(decision_body)} bytes, in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        bare_port = free_port()
        bare_url = f"http://127.0.0.1:{bare_port}"
        bare_log = tmp / "bare.log"
        with open(bare_log, "wb") as log:
            bare = subprocess.Popen(
                [sys.executable, str(HERE / "_bare_app.py"), str(tmp / "reply.json"),
                 str(bare_port)], stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT,
            )  # fmt: skip
        stack.callback(_stop, bare)
        _wait_http(f"{bare_url}/health", "the bare app", bare, bare_log)
        if cluster is not None:
            probe = PgProbe(cluster, "bench")
            stack.callback(probe.close)

        json_headers = {"Content-Type": "application/json"}
        bare_script = lua_script("POST", "/exchanges", json_headers, [bodies[0]])
        opa_script = lua_script("POST", DECISION_PATH, json_headers, [decision_body])
        health_script = lua_script("GET", "/health", {}, [])
        short = max(2, args.seconds // 4)

        def gateway_cpu() -> dict[str, list[int]]:
            cpu = {"gateway": gateway.pids, "opa": [opa.process.pid]}
            if probe is not None:
                cpu["postgresql"] = [probe.postmaster]
            return cpu

        def gateway_cell(c: int, seconds: int) -> Cell:
            world.consumer._token = None  # a fresh token each cell: they expire
            headers = {**json_headers, "Authorization": f"Bearer {world.consumer.token()}"}
            script = lua_script("POST", "/exchanges", headers, bodies)
            if probe is not None:
                probe.start()
            offset = gateway.log.stat().st_size
            asked = opa_requests(opa.url)
            trees = gateway_cpu()
            before = {name: tree_cpu(pids) for name, pids in trees.items()}
            cell = wrk.run("gateway", gateway.url, script, c, seconds)
            # Let the exchanges in flight when wrk stopped finish, then count everything.
            if probe is not None:
                cell.db = probe.stop()
            else:
                time.sleep(1.2)
            cell.cpu = {name: tree_cpu(pids) - before[name] for name, pids in trees.items()}
            cell.opa_requests = {k: n - asked.get(k, 0.0) for k, n in opa_requests(opa.url).items()}
            cell.opa_requests = {k: n for k, n in cell.opa_requests.items() if n}
            with open(gateway.log, "rb") as log:
                log.seek(offset)
                cell.answered, cell.log = log_failures(log.read().decode(errors="replace"))
            return cell

        worker_counts = [1]
        for n in args.workers:
            if n <= 1 or n in worker_counts:
                continue
            if engine != "postgresql":
                print(f"  workers={n} skipped: more than one worker only on PostgreSQL")
            elif not workers_ok:
                print(f"  workers={n} skipped: this gateway has no --workers (dsgw serve --help)")
            else:
                worker_counts.append(n)
        for workers in worker_counts:
            if workers != gateway.workers:
                gateway.stop()
                gateway.start(workers)
            gateway_cell(args.concurrency[0], 1)  # warm-up: connections, caches, code paths
            if workers == 1:
                wrk.run("bare", bare_url, bare_script, args.concurrency[0], 1)
                wrk.run("opa", opa.url, opa_script, args.concurrency[0], 1)
            for c in args.concurrency:
                row = Row(engine, workers, c, gateway_cell(c, args.seconds))
                print(f"  [{engine} w={workers} c={c:3d}] {'gateway':16}: {_fmt_cell(row.gateway)}",
                      flush=True)  # fmt: skip
                if workers == 1:
                    row.bare = wrk.run("bare", bare_url, bare_script, c, args.seconds,
                                       {"bare": [bare.pid]})  # fmt: skip
                    row.opa = wrk.run("opa", opa.url, opa_script, c, args.seconds,
                                      {"opa": [opa.process.pid]})  # fmt: skip
                    row.ceiling = wrk.run("ceiling", opa.url, health_script, c, short)
                    row.trivial = wrk.run("trivial", bare_url, health_script, c, short)
                    for name, cell in (("bare app", row.bare), ("OPA alone", row.opa),
                                       ("wrk→OPA /health", row.ceiling),
                                       ("wrk→bare /health", row.trivial)):  # fmt: skip
                        print(f"  [{engine} w={workers} c={c:3d}] {name:16}: {_fmt_cell(cell)}",
                              flush=True)  # fmt: skip
                _print_costs(row)
                rows.append(row)
            if probe is not None and probe.top and rows[-1].gateway.done:
                n = rows[-1].gateway.done
                print(f"  [{engine} w={workers} c={rows[-1].concurrency:3d}] the most frequent "
                      "statements, calls per exchange:")  # fmt: skip
                for query, calls in probe.top:
                    print(f"      {calls / n:5.2f}  {' '.join(query.split())[:110]}")
        check = world.consumer.call("POST", "/exchanges", content=bodies[-1],
                                    headers=json_headers)  # fmt: skip
        print(f"  after the run an exchange still answers {check.status_code}", flush=True)
    return rows


def _print_costs(row: Row) -> None:
    g = row.gateway
    label = f"  [{row.engine} w={row.workers} c={row.concurrency:3d}]"
    line = (
        f"{label} CPU per exchange: gateway {g.per_request('gateway'):.2f} ms, OPA "
        f"{g.per_request('opa'):.2f} ms"
    )
    if "postgresql" in g.cpu:
        line += f", PostgreSQL {g.per_request('postgresql'):.2f} ms"
    line += f"; wrk {1000 * g.wrk_cpu / max(1, g.requests):.3f} ms"
    print(f"{line} (over {g.done} exchanges the gateway answered)")
    if g.done and g.opa_requests:
        asked = ", ".join(f"{k} {n / g.done:.2f}" for k, n in sorted(g.opa_requests.items()))
        print(f"{label} OPA requests per exchange (OPA's /metrics): {asked}")
    if g.db and g.done:
        d = g.db
        print(
            f"{label} database per exchange (pg_stat_statements, pg_stat_database): "
            f"{d['statements'] / g.done:.1f} statements "
            f"({d['tx_control'] / g.done:.1f} of them BEGIN/COMMIT/SAVEPOINT...), "
            f"{d['xacts'] / g.done:.2f} transactions; lock waits: max "
            f"{100 * d['lock_share_max']:.0f}% of backends ({d['lock_worst_waiting']:.0f} of "
            f"{d['lock_worst_backends']:.0f}), mean {100 * d['lock_share_mean']:.0f}% over "
            f"{d['samples']:.0f} samples"
        )
    if row.bare and row.opa and row.ceiling and row.bare.rate and row.opa.rate:
        wrk_ms = 1000 * row.ceiling.wrk_cpu / max(1, row.ceiling.requests)
        print(
            f"{label} ratios: gateway / bare app {g.rate / row.bare.rate:.3f}x, gateway / OPA "
            f"alone {g.rate / row.opa.rate:.3f}x; CPU per request: bare app "
            f"{row.bare.per_request('bare'):.2f} ms, OPA alone {row.opa.per_request('opa'):.2f} "
            f"ms; wrk's own CPU per request {wrk_ms:.3f} ms "
            f"(~{1000 / wrk_ms if wrk_ms else 0:,.0f} req/s on one core of its own)",
            flush=True,
        )


def print_summary(rows: list[Row]) -> None:
    print("\nSummary (req/s; p99 ms; CPU ms per exchange; PostgreSQL: statements and max lock-")
    print("wait share per exchange; ratios are the gateway's req/s over the reference's)")
    head = (
        f"{'engine':10} {'w':>2} {'c':>3} | {'gateway':>8} {'p99':>7} {'err':>5} {'cpu gw':>7} "
        f"{'opa':>5} {'pg':>5} {'stmts':>6} {'lock%':>5} | {'bare':>6} {'p99':>6} {'OPA':>6} "
        f"{'p99':>6} | {'wrk ceil':>8} {'trivial':>7} | {'gw/bare':>7} {'gw/OPA':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        g = r.gateway
        pg = f"{g.per_request('postgresql'):5.2f}" if "postgresql" in g.cpu else f"{'-':>5}"
        stmts = f"{g.db['statements'] / g.done:6.1f}" if g.db and g.done else f"{'-':>6}"
        lock = f"{100 * g.db['lock_share_max']:5.0f}" if g.db else f"{'-':>5}"
        line = (
            f"{r.engine:10} {r.workers:>2} {r.concurrency:>3} | {g.rate:8.0f} {g.p99_ms:7.1f} "
            f"{g.errors:5d} {g.per_request('gateway'):7.2f} {g.per_request('opa'):5.2f} {pg} "
            f"{stmts} {lock} | "
        )
        if r.bare and r.opa and r.ceiling and r.trivial:
            line += (
                f"{r.bare.rate:6.0f} {r.bare.p99_ms:6.1f} {r.opa.rate:6.0f} {r.opa.p99_ms:6.1f} | "
                f"{r.ceiling.rate:8.0f} {r.trivial.rate:7.0f} | "
                f"{g.rate / r.bare.rate if r.bare.rate else 0:7.3f} "
                f"{g.rate / r.opa.rate if r.opa.rate else 0:7.3f}"
            )
        else:
            line += f"{'(references measured at w=1)':>54}"
        print(line)
    print(
        "\nTargets (issue 10): PostgreSQL c=32 >= 1,000 exchanges/s, p99 < 50 ms, >= 0.5x the "
        "bare app; SQLite >= 500/s, p99 < 100 ms; <= 2 ms gateway CPU and <= 4 statements per "
        "exchange; no lock wait above 10% of backends at c=32."
    )


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--concurrency", type=_ints, default=[1, 8, 32])
    parser.add_argument("--seconds", type=int, default=10, help="per cell (wrk -d)")
    parser.add_argument("--workers", type=_ints, default=[1, 2, 4],
                        help="dsgw serve --workers N, PostgreSQL only for N > 1")  # fmt: skip
    parser.add_argument("--contracts", type=int, default=4, help="exchanged round robin")
    parser.add_argument("--rows", type=int, default=3, help="rows per exchange (limit)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    binary = ensure_wrk(not args.no_install)
    version = subprocess.run([binary, "-v"], capture_output=True, text=True)
    workers_ok = serve_has_workers()
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at start; "
        f"{(version.stdout or version.stderr).splitlines()[0]}; wrk -t1 --timeout {WRK_TIMEOUT}; "
        f"{args.seconds} s per cell; dsgw serve --workers: {'yes' if workers_ok else 'no'}",
        flush=True,
    )
    print(
        "figures move with whatever else runs on this machine: compare the ratios of one run; "
        "CPU per exchange counts the whole process trees (PostgreSQL: every process of its "
        "cluster) over the cell and until the exchanges in flight are done, divided by the "
        "exchanges the gateway's log says it answered",
        flush=True,
    )
    rows: list[Row] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dsgw-wrk-")))
        opa = stack.enter_context(OpaServer())
        wrk = Wrk(binary, folder)
        for engine in engines:
            rows += run_engine(engine, args, wrk, opa, workers_ok)
    print_summary(rows)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
