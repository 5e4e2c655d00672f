"""Reading ``payment_api`` / ``listing_api``: the provider's session and the charging client (no network)."""

from __future__ import annotations

import json

import pytest
import requests

from sublessor_airflow.hooks.signed_http import ListingApiHook, PaymentApiHook, SignedBody
from sublessor_billing.payments.api import ListingApi, PaymentApi
from sublessor_billing.signing import verify


def define(monkeypatch, conn_id: str, **fields) -> None:
    values = {"conn_type": "http", "host": "https://pay.example", "port": 8443, "login": "app"}
    values.update({"password": "the-key", **fields})
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(values))


def test_client_is_built_from_the_connection_read_once(monkeypatch):
    define(monkeypatch, "payment_api")
    hook = PaymentApiHook(timeout_ms=1500, pool_size=7)
    client = hook.get_async_conn()
    monkeypatch.delenv("AIRFLOW_CONN_PAYMENT_API")  # read once: later clients need no lookup
    again = hook.get_async_conn()
    assert isinstance(client, PaymentApi) and isinstance(again, PaymentApi)
    assert (client.base_url, client.timeout_ms, client.limit) == (
        "https://pay.example:8443",
        1500,
        7,
    )
    assert client.signer.app_id == "app" and client.ssl_context is True
    assert client.describe("/trade/charge") == (
        "connection 'payment_api' at https://pay.example:8443/trade/charge"
    )
    assert "the-key" not in repr(client.signer) and "the-key" not in repr(vars(client))


def test_get_conn_is_the_providers_session_signing_bodies_without_basic_auth(monkeypatch):
    define(monkeypatch, "payment_api", extra=json.dumps({"X-Trace": "airflow"}))
    hook = PaymentApiHook()
    session = hook.get_conn()
    assert isinstance(session, requests.Session) and isinstance(session.auth, SignedBody)
    assert session.headers["Accept-Encoding"] == "identity"
    assert session.headers["X-Trace"] == "airflow"  # header extras, as the provider sends them
    request = requests.Request(
        "POST", hook.url_from_endpoint("/trade/query"), json={"order_id": 820000000001}
    )
    prepared = session.prepare_request(request)
    body = json.loads(prepared.body)
    assert "Authorization" not in prepared.headers and b"the-key" not in prepared.body
    assert body["app_id"] == "app" and body["order_id"] == 820000000001
    assert verify(body, "the-key")
    assert prepared.headers["Content-Length"] == str(len(prepared.body))
    assert prepared.url == "https://pay.example:8443/trade/query"


@pytest.mark.parametrize(
    ("extra", "verify_value", "ssl_context"),
    [
        ({}, True, True),
        ({"verify": False}, False, False),
        ({"verify": "false"}, False, False),
        ({"verify_ssl": "no"}, False, False),
    ],
)
def test_tls_verification_follows_the_extras(monkeypatch, extra, verify_value, ssl_context):
    define(monkeypatch, "listing_api", extra=json.dumps(extra))
    assert ListingApiHook().get_conn().verify is verify_value
    client = ListingApiHook().get_async_conn()
    assert isinstance(client, ListingApi) and client.ssl_context is ssl_context


def test_an_unreadable_ca_bundle_names_the_connection(monkeypatch):
    define(monkeypatch, "payment_api", extra=json.dumps({"verify": "/nonexistent/ca.pem"}))
    with pytest.raises(ValueError, match="'payment_api'.*CA bundle"):
        PaymentApiHook().get_conn()
    with pytest.raises(ValueError, match="'payment_api'.*CA bundle"):
        PaymentApiHook().get_async_conn()


def test_a_missing_client_certificate_names_the_connection(monkeypatch):
    define(monkeypatch, "payment_api", extra=json.dumps({"cert": ["/nonexistent/c.pem", "k"]}))
    with pytest.raises(ValueError, match="'payment_api'.*'cert'"):
        PaymentApiHook().get_conn()


def test_the_charging_client_refuses_a_proxy_it_would_bypass(monkeypatch):
    proxies = {"https": "http://user:secret@proxy.example:3128"}
    define(monkeypatch, "payment_api", extra=json.dumps({"proxies": proxies}))
    assert PaymentApiHook().get_conn().proxies == proxies  # the provider's session uses it
    with pytest.raises(ValueError, match="'payment_api' sets extra 'proxies' \\(https\\)") as err:
        PaymentApiHook().get_async_conn()
    assert "secret" not in str(err.value)


def test_the_charging_client_warns_that_header_extras_are_not_sent(monkeypatch, capsys):
    define(monkeypatch, "payment_api", extra=json.dumps({"X-Trace": "airflow", "verify": "no"}))
    client = PaymentApiHook().get_async_conn()
    assert client.ssl_context is False
    logged = capsys.readouterr().out  # the hook's task log
    assert "X-Trace" in logged and "not sent by the charging client" in logged


def test_a_connection_without_the_key_says_what_to_set(monkeypatch):
    define(monkeypatch, "payment_api", password=None)
    with pytest.raises(ValueError, match="password = app key"):
        PaymentApiHook().get_async_conn()
    with pytest.raises(ValueError, match="password = app key"):
        PaymentApiHook().get_conn()


def test_an_undefined_connection_says_what_to_create():
    with pytest.raises(ValueError, match="'nowhere' is not defined; create it"):
        PaymentApiHook("nowhere").get_conn()
