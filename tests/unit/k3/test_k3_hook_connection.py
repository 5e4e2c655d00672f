"""What K3CloudHook takes from the ``k3_cloud`` connection, before any request (no network)."""

from __future__ import annotations

import json

import pytest
import requests

from sublessor_airflow.hooks.k3_cloud import K3CloudError, K3CloudHook

EXTRA = {"acct_id": "瑞庭（上海）1117 aaa", "lcid": 2052, "form_id": "SUBL_Contract"}


def define(
    monkeypatch, host: str, port: int | None = None, schema: str | None = None, **extra
) -> None:
    conn = {"conn_type": "http", "host": host, "login": "api", "password": "pw"}
    conn.update({"port": port} if port else {})
    conn.update({"schema": schema} if schema else {})
    conn["extra"] = {**EXTRA, **extra}
    monkeypatch.setenv("AIRFLOW_CONN_K3_CLOUD", json.dumps(conn, ensure_ascii=False))


@pytest.mark.parametrize(
    ("host", "port", "schema", "problem"),
    [
        ("k3.example.com/k3cloud/", None, None, "has no scheme"),
        ("https://k3.example.com/k3cloud/", 8443, None, "put the port inside the url"),
        # With a schema the provider would have made http://k3... (the password in clear)
        # or k3cloud://... of a URI connection: the url must be whole in host.
        ("k3.example.com/k3cloud/", None, "http", "has no scheme"),
        ("https://k3.example.com:8443/k3cloud/", None, "k3cloud", "leave schema empty"),
    ],
)
def test_a_host_the_provider_would_misread_is_refused_before_any_request(
    monkeypatch, host, port, schema, problem
):
    define(monkeypatch, host, port, schema)
    with pytest.raises(K3CloudError, match=f"'k3_cloud': host .*{problem}"):
        K3CloudHook().get_conn()


def test_the_providers_session_keeps_k3_extras_and_credentials_out_of_headers(monkeypatch):
    define(monkeypatch, "https://k3.example.com:8443/k3cloud/", verify="no", X_Env="prod")
    hook = K3CloudHook()
    session = super(K3CloudHook, hook).get_conn()  # the provider's session, not logged in
    assert hook.base_url == "https://k3.example.com:8443/k3cloud/"
    assert hook.url_from_endpoint("Kingdee.X.common.kdsvc") == (
        "https://k3.example.com:8443/k3cloud/Kingdee.X.common.kdsvc"
    )
    assert session.verify is False and session.headers["X_Env"] == "prod"
    assert not {"acct_id", "lcid", "form_id"} & set(session.headers)
    prepared = session.prepare_request(
        requests.Request("POST", hook.url_from_endpoint("x"), json={})
    )
    assert "Authorization" not in prepared.headers
    settings = hook.settings
    assert (settings.acct_id, settings.lcid, settings.form_id) == (
        EXTRA["acct_id"],
        2052,
        "SUBL_Contract",
    )
    assert "pw" not in repr(settings)
