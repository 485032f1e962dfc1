"""ledger.federated: two gateways' exports verify together when every cross-reference between
them holds, and a reference that names a missing, different or uncovered entry is caught."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from ledger.cli import main
from ledger.errors import LedgerVerificationError
from ledger.export import export
from ledger.federated import verify_federated
from ledger.keys import Signer
from ledger.store import append, create_schema, cut_checkpoint

KEY_A = Signer(Ed25519PrivateKey.from_private_bytes(bytes([0xA1]) * 32))
KEY_B = Signer(Ed25519PrivateKey.from_private_bytes(bytes([0xB2]) * 32))
T0 = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
PROCESS = "fng_one"


class Ledger:
    """A gateway's ledger in SQLite, appended to step by step."""

    def __init__(self, path: Path, signer: Signer, origin: str) -> None:
        self.engine = create_engine(f"sqlite:///{path}")
        create_schema(self.engine)
        self.signer, self.origin, self.n = signer, origin, 0

    def add(self, type_: str, data: dict, *, checkpoint: bool = True) -> dict:
        """Append an entry (and a checkpoint covering it); return the evidence naming it."""
        self.n += 1
        with self.engine.begin() as conn:
            entry = append(conn, type=type_, data=data, time=T0 + timedelta(seconds=self.n),
                           signer=self.signer)  # fmt: skip
            cp = cut_checkpoint(conn, signer=self.signer, origin=self.origin, time=T0)
        evidence = {"entry": entry.hash, "seq": entry.seq}
        if checkpoint:
            evidence["checkpoint"] = {"size": cp["size"], "root": cp["root"]}
        return evidence

    def export(self, out: Path) -> Path:
        with self.engine.begin() as conn:
            export(conn, out, public_jwks=[self.signer.public_jwk()], signer=self.signer,
                   origin=self.origin, now=T0 + timedelta(hours=1))  # fmt: skip
        self.engine.dispose()
        return out


def exchange(tmp: Path, *, a_names=None, b_names=None, received: str = "c" * 64):
    """B sends a step (evidence 1), A records it naming B's entry, B records A's answer naming
    A's; `a_names` / `b_names` change what A's / B's reference says."""
    tmp.mkdir(parents=True, exist_ok=True)
    a = Ledger(tmp / "a.db", KEY_A, "a.example/ledger")
    b = Ledger(tmp / "b.db", KEY_B, "b.example/ledger")
    a.add("participant.registered", {"participant": "prt_x"})
    b.add("participant.registered", {"participant": "prt_y"})
    sent = b.add("federation.sent", {"process": PROCESS, "step": "negotiate"})
    named_by_a = {**sent, **(a_names(sent) if a_names else {})}
    answer = a.add("dsp.peer-step", {"consumer_pid": PROCESS, "step": "negotiate",
                                     "peer_evidence": named_by_a})  # fmt: skip
    named_by_b = {**answer, **(b_names(answer) if b_names else {})}
    b.add("federation.answered", {"process": PROCESS, "step": "negotiate",
                                  "peer_evidence": named_by_b})  # fmt: skip
    a.add("transfer.completed", {"transfer": "trf_1", "sha256": "c" * 64})
    b.add("federation.pulled", {"process": "ftr_1", "provider_pid": "trf_1", "sha256": received})
    return a.export(tmp / "a"), b.export(tmp / "b")


def caught(a: Path, b: Path) -> LedgerVerificationError:
    with pytest.raises(LedgerVerificationError) as info:
        verify_federated(a, b)
    return info.value


def test_a_good_pair_verifies_with_each_exchange_proven_both_ways(tmp_path):
    a, b = exchange(tmp_path)
    report = verify_federated(a, b)
    assert (report.a.size, report.b.size) == (3, 4)
    [found] = report.exchanges
    assert (found.process, found.a_to_b, found.b_to_a) == (PROCESS, 1, 1)


def test_the_command_prints_a_line_per_exchange_and_exits_0_then_1_on_a_mismatch(tmp_path, capsys):
    a, b = exchange(tmp_path / "good")
    assert main(["verify-federated", str(a), str(b)]) == 0
    assert f"exchange {PROCESS}: 1 reference(s) A->B, 1 B->A" in capsys.readouterr().out
    bad_a, bad_b = exchange(tmp_path / "bad", b_names=lambda e: {"entry": "0" * 64})
    assert main(["verify-federated", str(bad_a), str(bad_b)]) == 1
    assert "federated-hash" in capsys.readouterr().out


def test_a_reference_naming_another_hash_fails(tmp_path):
    a, b = exchange(tmp_path, a_names=lambda e: {"entry": "f" * 64})
    error = caught(a, b)
    assert error.check == "federated-hash" and error.location.startswith("A entry 2")


def test_a_reference_to_an_entry_the_other_export_lacks_fails(tmp_path):
    a, b = exchange(tmp_path, b_names=lambda e: {"seq": 99})
    assert caught(a, b).check == "federated-entry"


def test_a_checkpoint_the_other_export_does_not_hold_fails(tmp_path):
    a, b = exchange(tmp_path, b_names=lambda e: {"checkpoint": {"size": 7, "root": "0" * 64}})
    assert caught(a, b).check == "federated-checkpoint"


def test_a_checkpoint_with_another_root_fails(tmp_path):
    a, b = exchange(tmp_path, b_names=lambda e: {"checkpoint": {**e["checkpoint"],
                                                                "root": "0" * 64}})  # fmt: skip
    assert caught(a, b).check == "federated-checkpoint-root"


def test_a_checkpoint_that_does_not_cover_the_entry_fails(tmp_path):
    # A's first checkpoint (size 1) is real and signed, but precedes the entry named (seq 2).
    def earlier(named: dict) -> dict:
        return {"checkpoint": {"size": 1, "root": first_root[0]}}

    first_root: list[str] = []
    ledger = Ledger(tmp_path / "probe.db", KEY_A, "a.example/ledger")
    first_root.append(ledger.add("participant.registered", {"participant": "prt_x"})
                      ["checkpoint"]["root"])  # fmt: skip
    ledger.engine.dispose()
    a, b = exchange(tmp_path, b_names=earlier)
    assert caught(a, b).check == "federated-coverage"


def test_a_tampered_export_fails_on_its_own_before_any_cross_reference(tmp_path):
    a, b = exchange(tmp_path)
    entries = (b / "entries.jsonl").read_text().replace("negotiate", "renegotiate", 1)
    (b / "entries.jsonl").write_text(entries)
    error = caught(a, b)
    assert not error.check.startswith("federated")


def test_one_export_given_twice_is_no_federated_pair(tmp_path):
    _a, b = exchange(tmp_path)
    assert caught(b, b).check in ("federated-hash", "federated-entry")


def test_bytes_the_consumer_received_that_the_provider_did_not_deliver_fail(tmp_path):
    a, b = exchange(tmp_path, received="d" * 64)
    error = caught(a, b)
    assert error.check == "federated-delivery" and "trf_1" in error.location
