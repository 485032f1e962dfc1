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
4. prints one line per test and the totals, and fails when a test fails that
   tests/tck/known-failing.txt does not list (each line there: test id, then why), or when a
   listed test passes (the list must then shrink).
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from gateway.demo import local_gateway  # noqa: E402
from tests.e2e.test_transfers import transfer_world  # noqa: E402

HERE = Path(__file__).resolve().parent
KNOWN_FAILING = HERE / "known-failing.txt"
TEST_ID = re.compile(r"^([A-Z]+(?:_C)?:\d\d-\d\d)")
# The TCK's provider-side tests, by the method names its fixture keys are made of.
CATALOG_TESTS = ("CAT_01_01", "CAT_01_02")  # CAT_01_03 wants an unknown id: left unset
NEGOTIATION_TESTS = [f"CN_01_0{i}" for i in range(1, 5)] + [
    f"CN_0{g}_0{i}" for g, n in ((2, 7), (3, 6)) for i in range(1, n + 1)
]
# Each transfer test gets an agreement of its own: a contract negotiated to FINALIZED.
TRANSFER_TESTS = [f"TP_0{g}_0{i}" for g, n in ((1, 5), (2, 5), (3, 6)) for i in range(1, n + 1)]


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


def fixtures(world, url: str, callback_port: int) -> dict[str, str]:
    """Return the TCK's configuration: where the gateway is, who it is, and the seeded ids."""
    product = world.files  # a listed product with file delivery (transfers need it)
    offer = product["offers"][0]["id"]
    props = {
        "dataspacetck.launcher": "org.eclipse.dataspacetck.dsp.system.DspSystemLauncher",
        "dataspacetck.dsp.connector.http.url": f"{url}/dsp/2025-1",
        "dataspacetck.dsp.connector.http.base.url": url,
        "dataspacetck.dsp.connector.agent.id": url,
        # The consumer-side triggers (the TCK asks the connector to start a negotiation or a
        # transfer as a consumer): dsgw has none yet, so the consumer tests are known failing.
        "dataspacetck.dsp.connector.negotiation.initiate.url": f"{url}/dsp-tck/negotiations",
        "dataspacetck.dsp.connector.transfer.initiate.url": f"{url}/dsp-tck/transfers",
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
    for test in NEGOTIATION_TESTS:
        props[f"{test}_DATASETID"] = product["id"]
        props[f"{test}_OFFERID"] = offer
    for test in TRANSFER_TESTS:
        props[f"{test}_AGREEMENTID"] = world.contract(offer)["id"]
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
    with local_gateway(state) as url, httpx.Client(base_url=url, timeout=30) as client:
        world = transfer_world(client, SimpleNamespace(state_dir=state))
        props = fixtures(world, url, _free_port())
        props_file = state / "tck.properties"
        props_file.write_text(
            "".join(f"{k}={v}\n" for k, v in props.items()).replace("\\", "\\\\"),
            encoding="utf-8",
        )
        out = state / "tck-results.tsv"
        done = subprocess.run([*command, str(props_file), str(out)], cwd=state)
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
