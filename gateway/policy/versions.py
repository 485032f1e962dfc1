"""Policy versions as evidence: the bundle version OPA serves, and its activation on the ledger.

The bundle version is `sha256:` and the SHA-256 of the sorted SHA-256 digests (hex, one per line)
of the text of every Rego module OPA has loaded: the same value whether it is computed from
OPA's `GET /v1/policies` (what actually decides) or from the files of `policies/`
(`bundle_version_of_dir`), so anyone holding the policy files can check a decision's version.
`policies/` carries no data documents (the JSON schema is used at compile time only).
"""

import hashlib
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import Signer
from ledger import store as ledger_store

if TYPE_CHECKING:
    from gateway.policy.client import PolicyClient

ACTIVATED = "policy.version-activated"


def bundle_version_from_digests(digests: Iterable[str]) -> str:
    """Return the bundle version given the SHA-256 (hex) of each module's text."""
    return "sha256:" + hashlib.sha256("\n".join(sorted(digests)).encode("ascii")).hexdigest()


def bundle_version(modules: Iterable[str]) -> str:
    """Return the bundle version of a set of Rego module texts."""
    return bundle_version_from_digests(
        hashlib.sha256(raw.encode("utf-8")).hexdigest() for raw in modules
    )


def rego_files(policies_dir: Path) -> list[Path]:
    """Return the Rego files OPA loads from `policies_dir` (tests included), sorted."""
    return sorted(p for p in policies_dir.rglob("*.rego") if p.is_file())


def bundle_version_of_dir(policies_dir: Path) -> str:
    """Return the bundle version of the Rego files under `policies_dir`."""
    return bundle_version(p.read_text(encoding="utf-8") for p in rego_files(policies_dir))


def last_activated(session: Session) -> str | None:
    """Return the version of the latest `policy.version-activated` ledger entry, if any."""
    table = ledger_store.ledger_entries
    row = session.execute(
        select(table.c.seq).where(table.c.type == ACTIVATED).order_by(table.c.seq.desc()).limit(1)
    ).first()
    if row is None:
        return None
    entry = ledger_store.get_entry(session.connection(), int(row.seq))
    return entry.data.get("version") if entry is not None else None


def observe(
    session: Session, signer: Signer, *, version: str | None, modules: dict[str, str], opa_url: str
) -> int | None:
    """Record `version` on the ledger (in the session's transaction) unless it is the latest.

    Returns the seq of the new `policy.version-activated` entry, or None when nothing changed.
    """
    from gateway.evidence.service import record

    if version is None:
        return None
    previous = last_activated(session)
    if previous == version:
        return None
    entry = record(
        session,
        signer,
        type=ACTIVATED,
        data={
            "version": version,
            "previous": previous,
            "modules": dict(sorted(modules.items())),
            "opa": opa_url,
        },
    )
    return entry.seq


def current(session: Session, signer: Signer, client: "PolicyClient") -> str | None:
    """Return the version OPA serves, as last read, recording it on the ledger first if new.

    Never asks OPA for its policies inside a request: the watcher (gateway/policy/watch.py)
    re-reads them every `policy_version_ttl` seconds (and when the policy files change). The
    entry joins the session's transaction, so it is written with the decision that first used
    the version (or, at start, committed by the caller).
    """
    version, modules = client.cached_version()
    if version is not None and client.recorded_version != version:
        with _recording:  # one request of this process records it, the others see it recorded
            if client.recorded_version != version:
                observe(session, signer, version=version, modules=modules, opa_url=client.url)
                client.recorded_version = version
    return version


_recording = threading.Lock()
