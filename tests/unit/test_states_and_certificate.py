"""The state-machine helper's 409 problem, and registration certificates checked offline."""

import pytest

from gateway.core.errors import Problem
from gateway.core.states import StateMachine
from gateway.participants.service import LIFECYCLE as PARTICIPANT
from gateway.resources import certificate
from gateway.resources.service import LIFECYCLE as REGISTRATION
from ledger import Signer, b64url, canonical_json

MACHINE = StateMachine("thing", {"new": {"start": "running"}, "running": {"stop": "done"}})


def test_advance_returns_the_next_state():
    assert MACHINE.advance("t1", "new", "start") == "running"
    assert MACHINE.actions("running") == ["stop"] and MACHINE.allowed_next("done") == []


def test_an_invalid_transition_names_the_current_state_and_the_allowed_ones():
    with pytest.raises(Problem) as caught:
        MACHINE.advance("t1", "new", "stop")
    problem = caught.value
    assert problem.status == 409 and problem.slug == "invalid-transition"
    assert problem.extensions == {
        "current_state": "new",
        "allowed_next_states": ["running"],
        "allowed_actions": ["start"],
    }
    assert "t1 is new" in problem.detail and "'stop'" in problem.detail


def test_the_published_tables_are_the_documented_ones():
    assert ("active", "suspend", "suspended") in PARTICIPANT.table()
    assert ("publicised", "object", "accepted") in REGISTRATION.table()
    assert REGISTRATION.actions("coded") == []


def _payload() -> dict:
    record = {"resource": "res_1", "name": "n"}
    from gateway.core.hashing import content_hash

    return {
        "type": certificate.PAYLOAD_TYPE,
        "code": "DR-2026-000001",
        "record": record,
        "record_hash": content_hash(record),
    }


def test_a_certificate_verifies_with_the_gateway_key_only():
    signer = Signer.generate()
    jws = certificate.sign(_payload(), signer)
    assert certificate.verify(jws, [signer.public_jwk()])["code"] == "DR-2026-000001"
    other = Signer.generate()
    with pytest.raises(certificate.CertificateError, match="kid"):
        certificate.verify(jws, [other.public_jwk()])
    with pytest.raises(certificate.CertificateError, match="signature"):
        certificate.verify(jws, [{**other.public_jwk(), "kid": signer.kid}])


def test_a_changed_record_or_hash_is_caught():
    signer = Signer.generate()
    head, _, sig = certificate.sign(_payload(), signer).split(".")
    changed = {**_payload(), "code": "DR-2026-000002"}
    with pytest.raises(certificate.CertificateError, match="signature"):
        certificate.verify(f"{head}.{b64url(canonical_json(changed))}.{sig}", [signer.public_jwk()])
    bad_hash = {**_payload(), "record_hash": "0" * 64}
    jws = certificate.sign(bad_hash, signer)
    with pytest.raises(certificate.CertificateError, match="record_hash"):
        certificate.verify(jws, [signer.public_jwk()])
    for garbage in ("", "a.b", "a.b.c", 42):
        with pytest.raises(certificate.CertificateError, match="format"):
            certificate.verify(garbage, [signer.public_jwk()])


def _documented(section: str) -> set[tuple[str, str, str]]:
    """Return the (from, action, to) rows of a section's table in specs/lifecycles.md."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "specs" / "lifecycles.md").read_text()
    body = text.split(f"## {section}")[1].split("\n## ")[0]
    rows = set()
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("from", "—") or not cells[0].startswith("`"):
            continue
        action = cells[1].split(" (")[0]
        for state in re.findall(r"`([a-z]+)`", cells[0]):
            rows.add((state, action, cells[2].strip("`")))
    return rows


def test_the_spec_tables_are_the_code_tables():
    from gateway.authorisations.service import LIFECYCLE as AUTHORISATION

    assert _documented("Participants") == set(PARTICIPANT.table())
    assert _documented("Resource registrations") == set(REGISTRATION.table())
    assert _documented("Authorisations") == set(AUTHORISATION.table())
