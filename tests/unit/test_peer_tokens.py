"""The peer token checks that need no database: which tokens are peer tokens, their times on
the gateway clock, and the text of claims made safe to record."""

import json
from datetime import UTC, datetime

import jwt
import pytest
from freezegun import freeze_time
from jwt.algorithms import OKPAlgorithm

from gateway.peers.models import Peer
from gateway.peers.service import (
    LEEWAY,
    MAX_TOKEN_SECONDS,
    Refusal,
    _check_time,
    _printable,
    claimed_issuer,
)
from ledger import Signer

OURS = "https://gw-a.example"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def _token(**claims) -> str:
    key = Signer.generate()
    private = OKPAlgorithm.from_jwk(key.private_jwk())
    return jwt.api_jws.encode(json.dumps(claims).encode(), private, algorithm="EdDSA")


def test_a_token_claiming_another_issuer_is_a_peer_token_and_ours_is_not():
    assert claimed_issuer(_token(iss="https://gw-b.example"), OURS) == "https://gw-b.example"
    assert claimed_issuer(_token(iss=OURS), OURS) is None
    assert claimed_issuer(_token(iss=OURS + "/"), OURS) is None  # the same issuer
    assert claimed_issuer(_token(iss=42), OURS) is None
    assert claimed_issuer(_token(sub="x"), OURS) is None
    assert claimed_issuer("not a jwt", OURS) is None
    key = OKPAlgorithm.from_jwk(Signer.generate().private_jwk())
    listed = jwt.api_jws.encode(b'["https://gw-b.example"]', key, algorithm="EdDSA")
    assert claimed_issuer(listed, OURS) is None  # a payload that is no JSON object


PEER = Peer(id="https://gw-b.example")


@freeze_time(NOW)
@pytest.mark.parametrize(
    "iat, exp",
    [(T, T + MAX_TOKEN_SECONDS), (T - 10, T + 1), (T + LEEWAY, T + LEEWAY + 60)],
)
def test_a_short_lived_current_token_is_timely(iat, exp):
    _check_time(PEER, {"iat": iat, "exp": exp})


@freeze_time(NOW)
@pytest.mark.parametrize(
    "iat, exp, reason",
    [
        (T - 100, T - LEEWAY, "expired"),
        (T + LEEWAY + 1, T + 60, "not-yet-valid"),
        (T, T + MAX_TOKEN_SECONDS + 1, "too-long-lived"),
        (T - 3600, T + 60, "too-long-lived"),  # issued long ago, still valid by its exp
        (T, float("inf"), "malformed"),
        (T, float("nan"), "malformed"),
        ("now", T + 60, "malformed"),
    ],
)
def test_a_token_out_of_its_time_is_refused_with_the_reason(iat, exp, reason):
    with pytest.raises(Refusal) as refused:
        _check_time(PEER, {"iat": iat, "exp": exp})
    assert refused.value.reason == reason and refused.value.issuer == PEER.id


def test_claim_text_is_made_safe_to_store_and_record():
    assert _printable("https://gw-b.example/路径") == "https://gw-b.example/路径"
    assert _printable("a\x00b\nc\x7f\ud800d") == "a?b?c??d"
