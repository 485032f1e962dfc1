"""Verify two gateways' exports together: each on its own, then every cross-reference between
them (specs/ledger.md §18).

A federated step (one gateway acting at another over DSP) is recorded on both sides, and an
entry of one side may name an entry of the other in `data.peer_evidence`:
`{"entry": <hash>, "seq": <n>, "checkpoint": {"size": <m>, "root": <hex>}}`. For every such
reference, in both directions, the named entry must be in the other export at that seq with
that hash, the named checkpoint must be one of the other export's signed checkpoints (same
size, same root), it must cover the entry (size >= seq), and the named entry must be about the
same exchange (its process id, when it names one, is the referencing entry's). And what a
consumer's gateway received from a pull (`federation.pulled`) must be what the provider's
recorded it delivered (`transfer.completed` of that transfer, when there is one).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from ledger.checkpoint import parse_checkpoint
from ledger.errors import ExportUnreadableError, LedgerVerificationError
from ledger.verify import CHECKPOINTS_FILE, ENTRIES_FILE, VerifyReport, verify_export


@dataclass(frozen=True)
class Exchange:
    """One federated exchange (a DSP process), with the cross-references found for it."""

    process: str
    a_to_b: int = 0
    """References in A's export naming an entry of B's."""
    b_to_a: int = 0
    """References in B's export naming an entry of A's."""
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class FederatedReport:
    """Both exports verified and every cross-reference between them checked."""

    a: VerifyReport
    b: VerifyReport
    exchanges: list[Exchange] = field(default_factory=list)

    def to_json(self) -> dict:
        """Return the report as a JSON object."""
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "exchanges": [
                {
                    "process": x.process,
                    "a_to_b": x.a_to_b,
                    "b_to_a": x.b_to_a,
                    "steps": list(x.steps),
                }  # fmt: skip
                for x in self.exchanges
            ],
        }


@dataclass
class _Export:
    name: str
    path: Path
    hashes: dict[int, str]
    processes: dict[int, str | None]
    checkpoints: dict[int, str]
    references: list[tuple[int, str, str | None, str, dict]]
    """(seq, type, process, step, peer_evidence) of each entry naming the other side."""
    pulled: list[tuple[int, str, str]] = field(default_factory=list)
    """(seq, the provider's transfer id, sha256) of each `federation.pulled`."""
    delivered: dict[str, tuple[int, str]] = field(default_factory=dict)
    """{transfer id: (seq, sha256)} of each `transfer.completed`."""


def _process_of(data: dict) -> str | None:
    """Return the exchange an entry is about: our process id (`process`) on the consumer's side,
    the consumer's process id (`consumer_pid`) on the provider's."""
    value = data.get("process", data.get("consumer_pid"))
    return value if isinstance(value, str) else None


def _load(name: str, path: Path) -> _Export:
    """Read the entries' hashes, processes and references, and the checkpoints (already verified
    by verify_export, so the files are well-formed)."""
    hashes: dict[int, str] = {}
    processes: dict[int, str | None] = {}
    references = []
    pulled: list[tuple[int, str, str]] = []
    delivered: dict[str, tuple[int, str]] = {}
    try:
        with open(path / ENTRIES_FILE, "rb") as lines:
            for raw in lines:
                line = json.loads(raw)
                body = line["body"]
                seq, data = body["seq"], body["data"]
                hashes[seq] = line["hash"]
                processes[seq] = _process_of(data)
                kind, transfer = body["type"], data.get("provider_pid", data.get("transfer"))
                if kind == "federation.pulled" and isinstance(transfer, str):
                    pulled.append((seq, transfer, str(data.get("sha256"))))
                if kind == "transfer.completed" and isinstance(data.get("transfer"), str):
                    delivered[data["transfer"]] = (seq, str(data.get("sha256")))
                named = data.get("peer_evidence")
                if isinstance(named, dict):
                    step = str(data.get("step", body["type"]))
                    references.append((seq, body["type"], _process_of(data), step, named))
    except OSError as exc:
        raise ExportUnreadableError(f"cannot read {path / ENTRIES_FILE}: {exc.strerror}") from exc
    checkpoints: dict[int, str] = {}
    try:
        raw_checkpoints = (path / CHECKPOINTS_FILE).read_bytes()
    except FileNotFoundError:
        raw_checkpoints = b""
    for raw in raw_checkpoints.splitlines():
        cp = parse_checkpoint(json.loads(raw)["note"])
        checkpoints[cp.size] = cp.root.hex()
    return _Export(name, path, hashes, processes, checkpoints, references, pulled, delivered)


def _check(source: _Export, other: _Export) -> None:
    """Check every reference of `source` against `other`; raise at the first that fails."""
    for seq, type_, process, step, named in source.references:
        where = f"{source.name} entry {seq} ({type_}, step {step})"

        def fail(
            check: str, expected: object, found: object, where: str = where, seq: int = seq
        ) -> NoReturn:
            raise LedgerVerificationError(
                check, seq=seq, location=where, expected=expected, found=found
            )

        entry, at = named.get("entry"), named.get("seq")
        cp = named.get("checkpoint") if isinstance(named.get("checkpoint"), dict) else {}
        if not isinstance(at, int) or at not in other.hashes:
            fail("federated-entry", f"an entry of {other.name}'s export (1..{len(other.hashes)})",
                 f"seq {at!r}")  # fmt: skip
        if other.hashes[at] != entry:
            fail("federated-hash", f"{other.name} entry {at}'s hash {other.hashes[at]}", entry)
        size, root = cp.get("size"), cp.get("root")
        if size not in other.checkpoints:
            fail(
                "federated-checkpoint",
                f"a signed checkpoint of {other.name}'s export (sizes "
                f"{', '.join(map(str, sorted(other.checkpoints))) or 'none'})",
                f"size {size!r}",
            )
        if other.checkpoints[size] != root:
            fail("federated-checkpoint-root", f"{other.name}'s checkpoint of size {size}: root "
                 f"{other.checkpoints[size]}", root)  # fmt: skip
        if size < at:
            fail("federated-coverage", f"a checkpoint covering entry {at} (size >= {at})", size)
        theirs = other.processes.get(at)
        if process is not None and theirs is not None and theirs != process:
            fail("federated-process", f"{other.name} entry {at} about exchange {process}", theirs)


def _check_deliveries(source: _Export, other: _Export) -> None:
    """Check that what `source`'s consumer received from a pull (`federation.pulled`) is what
    `other` recorded it delivered (`transfer.completed` of that transfer), when it did."""
    for seq, transfer, sha256 in source.pulled:
        found = other.delivered.get(transfer)
        if found is not None and found[1] != sha256:
            raise LedgerVerificationError(
                "federated-delivery",
                seq=seq,
                location=f"{source.name} entry {seq} (federation.pulled of {transfer})",
                expected=f"the sha256 of {other.name} entry {found[0]} (transfer.completed), "
                f"{found[1]}",
                found=sha256,
            )


def verify_federated(a: Path, b: Path, **options) -> FederatedReport:
    """Verify the exports `a` and `b` (ledger.verify.verify_export, with `options`), then every
    cross-reference between them; return the report, or raise `LedgerVerificationError` at the
    first failure (`ExportUnreadableError` when a folder cannot be read)."""
    a_report = verify_export(Path(a), **options)
    b_report = verify_export(Path(b), **options)
    first, second = _load("A", Path(a)), _load("B", Path(b))
    _check(first, second)
    _check(second, first)
    _check_deliveries(first, second)
    _check_deliveries(second, first)
    if not first.references and not second.references:
        raise LedgerVerificationError(
            "federated-none",
            location="exports",
            expected="at least one entry naming the other gateway's entry (data.peer_evidence)",
            found="none in either export",
        )
    counts: dict[str, list] = defaultdict(lambda: [0, 0, []])
    for exp, index in ((first, 0), (second, 1)):
        for _seq, _type, process, step, _named in exp.references:
            row = counts[process or "?"]
            row[index] += 1
            if step not in row[2]:
                row[2].append(step)
    exchanges = [
        Exchange(process=p, a_to_b=n[0], b_to_a=n[1], steps=tuple(n[2]))
        for p, n in sorted(counts.items())
    ]
    return FederatedReport(a=a_report, b=b_report, exchanges=exchanges)
