"""The OPA the gateway starts runs with a lazier Go collector unless the operator says otherwise
(gateway/policy/opa_process.py `opa_environment`)."""

from gateway.policy.opa_process import OPA_GO_ENV, opa_environment


def test_opa_runs_with_the_collector_settings_unless_the_operator_set_them(monkeypatch):
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    monkeypatch.setenv("DSGW_PROBE", "kept")
    env = opa_environment()
    assert env["GOGC"] == OPA_GO_ENV["GOGC"] != "100" and env["GOMEMLIMIT"]
    assert env["DSGW_PROBE"] == "kept"  # the rest of the environment is passed on
    monkeypatch.setenv("GOGC", "150")
    assert opa_environment()["GOGC"] == "150"
