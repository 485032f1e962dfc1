"""The issuer remembers tokens it verified (gateway/auth/service.py `TokenIssuer.verify`), and a
remembered token is still refused once its time is up, or when its text differs by one byte."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from freezegun import freeze_time

from gateway.auth import service
from gateway.auth.service import TokenIssuer
from gateway.core.config import Settings
from gateway.core.errors import Problem
from ledger.keys import Signer

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def issuer(tmp_path):
    settings = Settings(state_dir=tmp_path, issuer="https://dsgw.example", token_ttl_seconds=300)
    return TokenIssuer(settings, Signer.generate())


def _token(issuer: TokenIssuer) -> str:
    who = SimpleNamespace(id="prt_consumer", roles=["consumer"])
    return issuer.issue(who)["access_token"]


def test_a_token_is_verified_once_and_its_claims_given_to_every_later_use(issuer, monkeypatch):
    with freeze_time(T0):
        token = _token(issuer)
        decoded = []
        real = issuer._decode
        monkeypatch.setattr(issuer, "_decode", lambda t: decoded.append(t) or real(t))
        first = issuer.verify(token)
        first["sub"] = "prt_someone_else"  # a caller's change does not reach the next caller
        second = issuer.verify(token)
    assert decoded == [token] and second["sub"] == "prt_consumer"


def test_a_remembered_token_is_refused_once_it_has_expired(issuer):
    with freeze_time(T0) as frozen:
        token = _token(issuer)
        assert issuer.verify(token)["sub"] == "prt_consumer"
        frozen.tick(timedelta(seconds=301))
        with pytest.raises(Problem) as refused:
            issuer.verify(token)
    assert refused.value.status == 401 and "expired" in refused.value.detail


def test_a_token_altered_after_it_was_verified_is_checked_again_and_refused(issuer):
    with freeze_time(T0):
        token = _token(issuer)
        issuer.verify(token)
        head, payload, sig = token.split(".")
        forged = ".".join([head, payload, sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")])
        with pytest.raises(Problem) as refused:
            issuer.verify(forged)
    assert refused.value.status == 401


def test_the_memory_of_verified_tokens_is_bounded(issuer, monkeypatch):
    monkeypatch.setattr(service, "VERIFIED_TOKENS_KEPT", 3)
    with freeze_time(T0):
        tokens = [_token(issuer) for _ in range(7)]
        for token in tokens:
            issuer.verify(token)
    assert 1 <= len(issuer._verified) <= 3 and tokens[-1] in issuer._verified
