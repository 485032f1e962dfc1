"""One issuer per state folder (gateway/core/config.py `settle_issuer`, `stored_issuer`)."""

import json
import threading

import pytest

from gateway.core.config import ISSUER_FILE, IssuerConfigError, Settings, settle_issuer


def test_the_first_start_records_its_address_and_later_starts_on_other_ports_use_it(tmp_path):
    first, note = settle_issuer(tmp_path, explicit=None, default="http://127.0.0.1:8081")
    second, _ = settle_issuer(tmp_path, explicit=None, default="http://127.0.0.1:8082")
    assert first == second == "http://127.0.0.1:8081" and note is None
    assert json.loads((tmp_path / ISSUER_FILE).read_text()) == {"issuer": first}
    assert (tmp_path / ISSUER_FILE).stat().st_mode & 0o077 == 0


def test_an_explicit_issuer_wins_replaces_the_recorded_one_and_says_so(tmp_path):
    settle_issuer(tmp_path, explicit=None, default="http://127.0.0.1:8081")
    issuer, note = settle_issuer(tmp_path, explicit="https://dsgw.example.gov.cn", default="x")
    assert issuer == "https://dsgw.example.gov.cn"
    assert "changes from http://127.0.0.1:8081" in note
    assert settle_issuer(tmp_path, explicit=None, default="http://127.0.0.1:9")[0] == issuer


def test_processes_starting_together_all_take_one_issuer(tmp_path):
    found: list[str] = []
    threads = [
        threading.Thread(
            target=lambda p=port: found.append(
                settle_issuer(tmp_path, explicit=None, default=f"http://127.0.0.1:{p}")[0]
            )
        )
        for port in range(9000, 9010)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found) == 10


@pytest.mark.parametrize("text", ["not json", "[]", '{"issuer": 7}', '{"issuer": "ftp://x"}'])
def test_a_malformed_issuer_file_stops_the_start_with_a_clear_error(tmp_path, text):
    (tmp_path / ISSUER_FILE).write_text(text)
    with pytest.raises(IssuerConfigError, match=ISSUER_FILE):
        settle_issuer(tmp_path, explicit=None, default="http://127.0.0.1:8080")


def test_an_explicit_issuer_that_is_not_a_base_url_is_refused(tmp_path):
    with pytest.raises(IssuerConfigError, match="--issuer"):
        settle_issuer(tmp_path, explicit="dsgw.example.gov.cn", default="http://127.0.0.1:1")


def test_the_admin_commands_settings_name_the_recorded_issuer(tmp_path, monkeypatch):
    monkeypatch.delenv("DSGW_ISSUER", raising=False)
    settle_issuer(tmp_path, explicit="https://dsgw.example.gov.cn", default="x")
    assert Settings.from_env(state_dir=tmp_path).issuer == "https://dsgw.example.gov.cn"
    monkeypatch.setenv("DSGW_ISSUER", "https://other.example")
    assert Settings.from_env(state_dir=tmp_path).issuer == "https://other.example"
