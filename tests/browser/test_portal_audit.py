"""The auditor's trace, entry inspector, checkpoints and consistency proofs, in Debian's Chromium.

The in-browser consistency check (crypto.js) is held against the ledger library's own prover and
verifier (ledger/merkle.py, ledger/receipt.py) on every pair of sizes up to 64, valid and
tampered; the journeys run on the live gateway of conftest.py with its real OPA.
"""

import base64
import copy
import hashlib
import json
import subprocess
import sys
from datetime import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says why the tests cannot run (skip, or CI failure)
    expect = None

from gateway.client import Client
from ledger.checkpoint import sign_checkpoint
from ledger.keys import Signer
from ledger.merkle import (
    InvalidProofError,
    consistency_proof,
    leaf_hash,
    memory_source,
    root_of,
    verify_consistency,
)
from ledger.receipt import ReceiptError, check_consistency
from tests.browser.conftest import PHONE, sign_in

SIZES = 64
LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(SIZES)]
ROOTS = [root_of(LEAVES[:n]) for n in range(SIZES + 1)]

# The browser's verdict on each case: {ok} or {check, expected, found}.
_EVALUATE_PROOFS = """async cases => {
  const c = await import('/portal/static/crypto.js');
  const out = [];
  for (const x of cases) {
    try {
      const [old, fresh] = [c.fromHex(x.old), c.fromHex(x.new)];
      await c.verifyConsistency(x.m, x.n, old, fresh, x.proof.map(c.fromHex));
      out.push({ok: true});
    } catch (err) {
      out.push({ok: false, check: err.check ?? null, message: String(err.message)});
    }
  }
  return out;
}"""

_EVALUATE_CHECKS = """async ([jwks, proofs]) => {
  const c = await import('/portal/static/crypto.js');
  const keys = await c.ledgerKeys(jwks);
  const out = [];
  for (const p of proofs) {
    try {
      const r = await c.checkConsistency(p, keys);
      out.push({ok: true, sizes: [r.oldSize, r.newSize]});
    } catch (err) {
      out.push({ok: false, check: err.check ?? null, message: String(err.message)});
    }
  }
  return out;
}"""


def _flip(h: bytes, at: int = 0) -> bytes:
    return h[:at] + bytes([h[at] ^ 0x01]) + h[at + 1 :]


def _python_verdict(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    try:
        verify_consistency(m, n, old, new, proof)
    except InvalidProofError:
        return False
    return True


def _cases() -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """Every (m, n) with 0 <= m <= n <= 64: the library's proof, and tampered copies of it."""
    source = memory_source(LEAVES)
    cases = []
    for n in range(1, SIZES + 1):
        for m in range(0, n + 1):
            proof = consistency_proof(m, n, source)
            old, new = ROOTS[m], ROOTS[n]
            cases.append(("valid", m, n, old, new, proof))
            if m == 0:
                continue
            if proof:
                at = (m * 7 + n) % len(proof)
                flipped = list(proof)
                flipped[at] = _flip(flipped[at], (m + n) % 32)
                cases.append(("hash flipped", m, n, old, new, flipped))
                cases.append(("hash dropped", m, n, old, new, proof[:-1]))
            cases.append(("hash added", m, n, old, new, [*proof, LEAVES[0]]))
            cases.append(("old root", m, n, _flip(old), new, proof))
            cases.append(("new root", m, n, old, _flip(new, 31), proof))
            if m < n - 1:
                cases.append(("old size", m + 1, n, old, new, proof))
    return cases


def test_the_browser_consistency_check_agrees_with_the_ledger_library_on_every_size_to_64(pages):
    cases = _cases()
    page = pages.open("/portal/")
    found = page.evaluate(
        _EVALUATE_PROOFS,
        [
            {"m": m, "n": n, "old": old.hex(), "new": new.hex(), "proof": [p.hex() for p in proof]}
            for _, m, n, old, new, proof in cases
        ],
    )
    assert len(found) == len(cases)
    disagree = []
    for (what, m, n, old, new, proof), js in zip(cases, found, strict=True):
        python = _python_verdict(m, n, old, new, proof)
        assert python is (what == "valid"), (what, m, n)  # the library itself tells them apart
        if js["ok"] is not python or (not js["ok"] and js["check"] != "consistency"):
            disagree.append((what, m, n, js))
    assert not disagree, disagree[:10]
    valid = sum(1 for c in cases if c[0] == "valid")
    assert valid == sum(n + 1 for n in range(1, SIZES + 1))  # m = 0 … n for every n
    assert len(cases) - valid > 5 * 2000  # and more than ten thousand tampered ones


def _signed_proof(signer: Signer, origin: str, m: int, n: int) -> dict:
    """A consistency proof as GET /ledger/proofs/consistency serves it, signed by `signer`."""
    hashes = consistency_proof(m, n, memory_source(LEAVES))
    return {
        "old_size": m,
        "new_size": n,
        "old_root": ROOTS[m].hex(),
        "new_root": ROOTS[n].hex(),
        "hashes": [h.hex() for h in hashes],
        "old_checkpoint": sign_checkpoint(origin, m, ROOTS[m], signer),
        "new_checkpoint": sign_checkpoint(origin, n, ROOTS[n], signer),
    }


def _root_line(note: str, root: bytes) -> str:
    lines = note.split("\n")
    lines[2] = base64.b64encode(root).decode()
    return "\n".join(lines)


def test_the_browser_checks_signed_proofs_as_ledger_check_consistency_does(pages):
    signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32))
    other = Signer.generate()
    origin = "example.dsgw/ledger"
    proofs, expected = [], []
    for m, n in [(1, 2), (3, 7), (4, 8), (5, 64), (32, 33), (63, 64), (7, 7)]:
        good = _signed_proof(signer, origin, m, n)
        proofs.append(good)
        expected.append(None)
        tampered = copy.deepcopy(good)  # the newer root changed, the note not re-signed
        tampered["new_checkpoint"] = _root_line(good["new_checkpoint"], _flip(ROOTS[n]))
        proofs.append(tampered)
        expected.append("checkpoint")
        tampered = copy.deepcopy(good)  # a fork: another root for the old size, well signed
        tampered["old_checkpoint"] = sign_checkpoint(origin, m, _flip(ROOTS[m]), signer)
        del tampered["old_root"]
        proofs.append(tampered)
        expected.append("consistency")
        tampered = copy.deepcopy(good)  # signed by a key the gateway never published
        tampered["new_checkpoint"] = sign_checkpoint(origin, n, ROOTS[n], other)
        proofs.append(tampered)
        expected.append("checkpoint")
        tampered = copy.deepcopy(good)  # the newer note of another log, same key
        tampered["new_checkpoint"] = sign_checkpoint("elsewhere/ledger", n, ROOTS[n], signer)
        proofs.append(tampered)
        expected.append("consistency")
        if good["hashes"]:
            tampered = copy.deepcopy(good)
            tampered["hashes"][-1] = _flip(bytes.fromhex(tampered["hashes"][-1])).hex()
            proofs.append(tampered)
            expected.append("consistency")
    keys = {signer.kid: signer.public_key()}
    jwks = {"keys": [signer.public_jwk()]}
    page = pages.open("/portal/")
    found = page.evaluate(_EVALUATE_CHECKS, [jwks, proofs])
    for proof, want, js in zip(proofs, expected, found, strict=True):
        try:
            check_consistency(proof, keys)
            python = None
        except ReceiptError as exc:
            python = exc.check
        assert python == want, (proof, python)
        assert (None if js["ok"] else js["check"]) == want, (proof["old_size"], want, js)

    # only the signed notes are trusted: a reply whose plain fields lie about them fails in the
    # browser (the library reads only the notes and the hashes)
    lying = copy.deepcopy(proofs[0])
    lying["new_root"] = ROOTS[3].hex()
    assert page.evaluate(_EVALUATE_CHECKS, [jwks, [lying]])[0]["check"] == "format"


def _client(world, role: str) -> Client:
    return Client(world.url, world.ids[role.upper()], world.key(role))


def _cli_trace(world, flag: str, ident: str) -> list[dict]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "trace",
            flag,
            ident,
            "--json",
            "--url",
            world.url,
            "--participant",
            world.ids["AUDITOR"],
            "--key",
            str(world.key("auditor")),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_auditor_traces_a_contract_and_a_product_from_their_pages_as_dsgw_trace_does(pages, world):
    contract, product = world.ids["CONTRACT"], world.ids["PRODUCT"]
    page = pages.open(f"/portal/?lang=en#/contract/{contract}")
    sign_in(page, world.ids["AUDITOR"], world.key("auditor"))
    page.click("#trace-link")
    page.wait_for_selector("#trace-steps li.step")
    expected = _cli_trace(world, "--contract", contract)
    seqs = page.locator("#trace-steps li.step").evaluate_all("ls => ls.map(l => +l.dataset.seq)")
    # the page shows what `dsgw trace` prints, in order, and nothing else
    assert seqs == [e["body"]["seq"] for e in expected]
    types = page.locator("#trace-steps li.step").evaluate_all("ls => ls.map(l => l.dataset.type)")
    assert {"contract.requested", "contract.finalized", "exchange.delivered"} <= set(types)
    assert page.locator("#trace-checked").get_attribute("data-failed") == "0"
    assert page.locator("#trace-steps .tag.bad").count() == 0
    pages.shot(page, "trace-contract")

    # the entry inspector, from a step of the trace: the entry, checked in the browser
    first = expected[0]["body"]["seq"]
    page.click(f"#trace-steps li.step[data-seq='{first}'] a.seq")
    page.wait_for_selector("#entry-verdict")
    assert page.locator("#entry-verdict").get_attribute("data-verdict") == "verified"
    assert f'"seq": {first}' in page.locator("#entry-page pre").inner_text()
    assert page.locator(f"#entry-page a[data-trace='{contract}']").count() == 1
    pages.shot(page, "entry-inspector")

    page.goto(f"{world.url}/portal/?lang=en#/product/{product}")
    page.click("#trace-link")
    page.wait_for_selector("#trace-steps li.step")
    expected = _cli_trace(world, "--product", product)
    seqs = page.locator("#trace-steps li.step").evaluate_all("ls => ls.map(l => +l.dataset.seq)")
    assert seqs == [e["body"]["seq"] for e in expected]
    assert int(page.locator("#trace-count").inner_text()) == len(expected)
    assert "product.listed" in page.locator("#trace-steps").inner_text()
    page.set_viewport_size(PHONE)
    pages.shot(page, "trace-product-phone")
    page.click('button.lang[data-lang="zh-CN"]')  # re-labelled in place, still signed in
    page.wait_for_selector("#trace-steps li.step")
    assert page.locator("h1").inner_text() == f"追溯:{product}"
    assert "全部有效" in page.locator("#trace-checked").inner_text()
    pages.shot(page, "trace-product-zh-phone")


def test_a_consumer_sees_no_trace_link_and_the_ledger_refuses_it_the_trace(pages, world):
    page = pages.open(f"/portal/#/contract/{world.ids['CONTRACT']}")
    sign_in(page, world.ids["CONSUMER"], world.key("consumer"))
    page.wait_for_selector("#contract-state")
    assert page.locator("#trace-link").count() == 0
    pages.expect_console_error(r"status of 403")
    page.goto(f"{world.url}/portal/#/trace/{world.ids['CONTRACT']}")
    page.wait_for_selector("#trace .problem")
    assert page.locator("#trace .problem").get_attribute("data-problem-type") == (
        "urn:dsgw:problem:forbidden"
    )


def _proof_json(page) -> dict:
    return json.loads(page.locator("#consistency-json").input_value())


def _verify_proof(page, proof: dict) -> tuple[str, str | None]:
    page.fill("#consistency-json", json.dumps(proof, indent=2))
    page.click("#consistency-verify")
    page.wait_for_selector("#consistency-verdict")
    verdict = page.locator("#consistency-verdict")
    return verdict.get_attribute("data-verdict"), verdict.get_attribute("data-check")


def test_auditor_verifies_checkpoints_and_a_consistency_proof_in_the_browser_and_tampering_fails(
    pages, world
):
    auditor, consumer = _client(world, "auditor"), _client(world, "consumer")
    page = pages.open("/portal/?lang=en#/auditor")
    sign_in(page, world.ids["AUDITOR"], world.key("auditor"))
    page.click("#checkpoints-link")
    page.wait_for_selector("#checkpoint-list :is(#checkpoints, #checkpoints-none)")
    page.click("#checkpoints-cut")
    page.wait_for_selector("#checkpoints tr[data-size]")
    old = auditor._json("GET", "/ledger/checkpoint")
    consumer.exchange(world.ids["CONTRACT"])  # new entries after it
    page.click("#checkpoints-cut")
    page.wait_for_selector(f"#checkpoints tr[data-size]:not([data-size='{old['size']}']) .sig")
    new = auditor._json("GET", "/ledger/checkpoint")
    assert new["size"] > old["size"]
    verdicts = page.locator("#checkpoints td.sig").evaluate_all(
        "ts => ts.map(t => t.dataset.verdict)"
    )
    assert verdicts and set(verdicts) == {"verified"}
    assert "signed by" in page.locator(f"#checkpoints tr[data-size='{new['size']}']").inner_text()
    page.check(f"#checkpoints tr[data-size='{old['size']}'] input[name=old]")
    page.check(f"#checkpoints tr[data-size='{new['size']}'] input[name=new]")
    page.click("#consistency-fetch")
    page.wait_for_selector("#consistency-verdict")
    assert page.locator("#consistency-verdict").get_attribute("data-verdict") == "verified"
    assert f"size {new['size']} extends the log of size {old['size']}" in (
        page.locator("#consistency-verdict").inner_text()
    )
    proof = _proof_json(page)
    assert proof["old_checkpoint"] == old["note"] and proof["new_checkpoint"] == new["note"]
    pages.shot(page, "consistency-verified")

    # a tampered proof, root or checkpoint fails, naming the check
    if proof["hashes"]:
        tampered = copy.deepcopy(proof)
        tampered["hashes"][0] = ("1" if tampered["hashes"][0][0] == "0" else "0") + tampered[
            "hashes"
        ][0][1:]
        assert _verify_proof(page, tampered) == ("failed", "consistency")
        pages.shot(page, "consistency-tampered-hash")
    tampered = copy.deepcopy(proof)
    tampered["new_checkpoint"] = _root_line(proof["new_checkpoint"], bytes(32))
    assert _verify_proof(page, tampered) == ("failed", "checkpoint")
    assert "new checkpoint" in page.locator("#consistency-verdict").inner_text()
    tampered = copy.deepcopy(proof)
    tampered["old_root"] = "00" * 32
    assert _verify_proof(page, tampered) == ("failed", "format")
    assert _verify_proof(page, proof) == ("verified", None)

    # a checkpoint the auditor saved earlier: the proof must start from it, not from the
    # gateway's copy; a gateway that later shows another tree of that size is caught
    page.fill("#saved-checkpoint", old["note"])
    page.click("#consistency-fetch")
    page.wait_for_selector("#consistency-verdict")
    assert page.locator("#consistency-verdict").get_attribute("data-verdict") == "verified"
    assert page.locator("#saved-differs").count() == 0
    gateway_key = json.loads((world.state / "keys" / "gateway-ed25519.jwk").read_text())
    forged_root = hashlib.sha256(b"another history").digest()
    forged = sign_checkpoint(
        old["note"].split("\n", 1)[0], old["size"], forged_root, Signer.from_jwk(gateway_key)
    )
    page.fill("#saved-checkpoint", forged)
    page.click("#consistency-fetch")
    page.wait_for_selector("#consistency-verdict[data-verdict='failed']")
    assert page.locator("#consistency-verdict").get_attribute("data-check") == "consistency"
    assert forged_root.hex() in page.locator("#consistency-verdict").inner_text()
    assert page.locator("#saved-differs").count() == 1
    pages.shot(page, "consistency-saved-checkpoint-forked")
    page.click('button.lang[data-lang="zh-CN"]')
    page.wait_for_selector("#checkpoints td.sig")
    assert "已由" in page.locator("#checkpoints").inner_text()
    pages.shot(page, "checkpoints-zh")


def test_a_fresh_receipt_says_when_its_proof_is_due_and_fetches_it_once_a_checkpoint_covers_it(
    pages, world
):
    auditor = _client(world, "auditor")
    auditor.request("POST", "/ledger/checkpoints")  # the latest is fresh: none due at the pull
    page = pages.open(f"/portal/?lang=en#/contract/{world.ids['CONTRACT']}")
    sign_in(page, world.ids["CONSUMER"], world.key("consumer"))
    page.click("#pull")
    page.wait_for_selector("#exchange")
    page.click("#verify-receipt")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == "verified"
    assert "no checkpoint covers it yet" in page.locator("#verdict").inner_text()
    page.wait_for_selector("#proof-due")
    seq = int(page.locator("#receipt-seq").inner_text().split()[-1])
    entry_time = auditor._json("GET", f"/ledger/entries/{seq}")["body"]["time"]
    schedule = auditor._json("GET", "/ledger/checkpoints/schedule")
    due = page.locator("#proof-due").get_attribute("data-due")
    waited = datetime.fromisoformat(due) - datetime.fromisoformat(entry_time)
    assert waited.total_seconds() == pytest.approx(schedule["seconds"], abs=0.01)
    assert f"once {schedule['every']} entries follow" in page.locator("#proof-pending").inner_text()
    pages.shot(page, "receipt-proof-pending")

    cut = auditor._json("POST", "/ledger/checkpoints")
    assert cut["size"] >= seq
    page.click("#refetch-receipt")
    page.wait_for_selector("#verdict:has-text('proven in the signed checkpoint')")
    assert page.locator("#verdict").get_attribute("data-verdict") == "verified"
    assert page.locator("#proof-pending").count() == 0
    pages.shot(page, "receipt-proof-fetched-again")
