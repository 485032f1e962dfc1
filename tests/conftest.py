"""Fixtures: the real OPA server, the databases (SQLite and PostgreSQL), and a gateway per test.

DSGW_TEST_DATABASES (default "sqlite") lists the engines every database test runs against;
./deploy/test.sh sets "sqlite,postgresql".
"""

import os
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import build_gateway, create_app
from gateway.core.config import Settings
from gateway.policy.opa_process import OpaServer

DATABASES = [d.strip() for d in os.environ.get("DSGW_TEST_DATABASES", "sqlite").split(",") if d]
BASE_URL = "http://localhost"


@pytest.fixture(scope="session")
def opa_server():
    """The real OPA server, loaded with policies/, for the whole session."""
    with OpaServer() as server:
        yield server


@pytest.fixture(scope="session")
def pg_cluster():
    """A throw-away PostgreSQL cluster for the whole session."""
    from tests.support.pg import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster


@contextmanager
def fresh_database(engine: str, folder: Path, request):
    """Yield the URL of a fresh, empty database of `engine` (sqlite: a file in `folder`)."""
    if engine == "sqlite":
        yield f"sqlite:///{folder / 'gateway.db'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"t_{uuid.uuid4().hex[:12]}"
    cluster.create_database(name)
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


def gateway_settings(folder: Path, database_url: str, opa_url: str) -> Settings:
    """The settings of a test's gateway: its state in `folder`, the suite's OPA."""
    return Settings(
        state_dir=folder / "state",
        database_url=database_url,
        opa_url=opa_url,
        issuer=BASE_URL,
        # The suite's S3 and HTTP sinks listen on loopback (the gateway's own OPA and
        # database stay refused whatever is allowed).
        sink_allowed_networks="127.0.0.0/8",
    )


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path: Path):
    """A fresh, empty database of each configured engine."""
    with fresh_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, opa_server: OpaServer) -> Settings:
    return gateway_settings(tmp_path, database_url, opa_server.url)


@pytest.fixture
def gateway(settings: Settings):
    gw = build_gateway(settings)
    yield gw
    gw.policy.close()
    gw.engine.dispose()


@pytest.fixture
def client(gateway) -> TestClient:
    with TestClient(create_app(gateway=gateway), base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture(scope="module", params=DATABASES)
def module_gateway(request, tmp_path_factory, opa_server):
    """One gateway of each engine for a whole test file, for files of many requests that need
    no fresh state each (a world built for each of them was most of their time)."""
    folder = tmp_path_factory.mktemp("module")
    with fresh_database(request.param, folder, request) as url:
        # Tokens for the whole file: it may outlast the default 15 minutes on a loaded machine,
        # and fetching one for each test would meet the token route's rate limit.
        settings = replace(gateway_settings(folder, url, opa_server.url), token_ttl_seconds=14400)
        gw = build_gateway(settings)
        try:
            yield gw
        finally:
            gw.policy.close()
            gw.engine.dispose()


@pytest.fixture(scope="module")
def module_client(module_gateway) -> TestClient:
    with TestClient(create_app(gateway=module_gateway), base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def module_world(module_client, module_gateway):
    """The demo's cast on `module_gateway`, built once per file and engine."""
    from tests.e2e.world import build_world

    return build_world(module_client, module_gateway.settings.state_dir)


# -- where the suite's time goes ----------------------------------------------------------------
# Each phase is timed on CLOCK_MONOTONIC read through clock_gettime, which freezegun does not
# replace (pytest's own durations are garbage for tests that freeze the clock).


def _wall() -> float:
    import time

    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _timed(item, phase):
    started = _wall()
    try:
        yield
    finally:
        item.stash.setdefault(_PHASES, {})[phase] = _wall() - started


_PHASES = pytest.StashKey[dict]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _timed(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _timed(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _timed(item, "teardown")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    seconds = item.stash.get(_PHASES, {}).get(call.when)
    if seconds is not None:
        outcome.get_result().user_properties.append(("wall_seconds", seconds))


def pytest_addoption(parser):
    parser.addoption(
        "--file-durations",
        type=int,
        default=0,
        metavar="N",
        help="print the N test files that took longest (set-up, calls and tear-down added up, "
        "module and session fixtures included), and each worker's busy time",
    )


def pytest_terminal_summary(terminalreporter, config):
    top = config.getoption("--file-durations")
    if not top:
        return
    files: dict[str, float] = {}
    workers: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) not in ("setup", "call", "teardown"):
                continue
            seconds = dict(getattr(report, "user_properties", ())).get("wall_seconds")
            if seconds is None:
                continue
            path = report.nodeid.split("::", 1)[0]
            files[path] = files.get(path, 0.0) + seconds
            node = getattr(report, "node", None)
            worker = getattr(getattr(node, "gateway", None), "id", None) or "main"
            workers[worker] = workers.get(worker, 0.0) + seconds
    if not files:
        return
    terminalreporter.write_sep("=", f"slowest {min(top, len(files))} test files")
    for path, seconds in sorted(files.items(), key=lambda kv: -kv[1])[:top]:
        terminalreporter.write_line(f"{seconds:8.1f}s {path}")
    busy = ", ".join(f"{w} {s:.0f} s" for w, s in sorted(workers.items()))
    terminalreporter.write_line(f"all files: {sum(files.values()):.0f} s; busy per worker: {busy}")
