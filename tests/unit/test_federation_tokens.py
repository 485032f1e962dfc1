"""This gateway's own peer tokens (what it signs when it calls a peer) pass the checks a peer
makes on them, and the evidence a peer sends is recorded only in the shape specs/ledger.md §18
gives it."""

from datetime import UTC, datetime

from freezegun import freeze_time

from gateway.core.config import Settings
from gateway.federation.service import read_evidence
from gateway.peers.models import Peer
from gateway.peers.service import (
    MAX_TOKEN_SECONDS,
    _check_time,
    _verified,
    sign_token,
)
from ledger import Signer

US, THEM = "https://gw-b.example", "https://gw-a.example"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@freeze_time(NOW)
def test_our_own_peer_token_verifies_with_our_published_key_at_the_peer(tmp_path):
    key = Signer.generate()
    token = sign_token(key, issuer=US, audience=THEM, participant_id="prt_x", lifetime=10_000)
    as_registered_there = Peer(id=US, jwks={"keys": [key.public_jwk()]})
    there = Settings(state_dir=tmp_path, issuer=THEM)
    claims = _verified(as_registered_there, token, there)
    assert (claims["iss"], claims["sub"], claims["aud"]) == (US, US, THEM)
    assert claims["participant_id"] == "prt_x"
    assert claims["exp"] - claims["iat"] == MAX_TOKEN_SECONDS  # never longer than a peer takes
    _check_time(as_registered_there, claims)  # raises if the peer would refuse its times


@freeze_time(NOW)
def test_a_callback_token_names_no_participant_and_each_token_is_fresh():
    key = Signer.generate()
    first = sign_token(key, issuer=US, audience=THEM, participant_id=None)
    second = sign_token(key, issuer=US, audience=THEM, participant_id=None)
    assert first != second  # a fresh jti each time: the peer refuses a replay
    import jwt

    assert "participant_id" not in jwt.decode(first, options={"verify_signature": False})


GOOD = {"entry": "a" * 64, "seq": 5, "checkpoint": {"size": 6, "root": "b" * 64}}


def test_a_peers_evidence_is_kept_only_in_its_shape():
    assert read_evidence(GOOD) == GOOD
    assert read_evidence({"@value": GOOD, "@type": "@json"}) == GOOD  # as JSON-LD carries it
    assert read_evidence({**GOOD, "extra": "dropped"}) == GOOD
    for bad in (
        None,
        "x",
        {**GOOD, "entry": "A" * 64},
        {**GOOD, "entry": "a" * 63},
        {**GOOD, "seq": True},
        {**GOOD, "seq": 0},
        {**GOOD, "checkpoint": {"size": 4, "root": "b" * 64}},  # does not cover seq 5
        {**GOOD, "checkpoint": {"size": 6, "root": "zz"}},
        {**GOOD, "checkpoint": None},
    ):
        assert read_evidence(bad) is None, bad
