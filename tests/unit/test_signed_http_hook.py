"""Reading ``payment_api`` / ``listing_api`` into the asynchronous clients (no network)."""

from __future__ import annotations

import json

import pytest

from sublessor_airflow.hooks.signed_http import ListingApiHook, PaymentApiHook
from sublessor_billing.payments.api import ListingApi, PaymentApi


def define(monkeypatch, conn_id: str, **fields) -> None:
    values = {"conn_type": "http", "host": "https://pay.example", "port": 8443, "login": "app"}
    values.update({"password": "the-key", **fields})
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(values))


def test_client_is_built_from_the_connection_read_once(monkeypatch):
    define(monkeypatch, "payment_api")
    hook = PaymentApiHook(timeout_ms=1500, pool_size=7)
    client = hook.get_conn()
    monkeypatch.delenv("AIRFLOW_CONN_PAYMENT_API")  # read once: later clients need no lookup
    again = hook.get_conn()
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


@pytest.mark.parametrize(
    ("extra", "ssl_context"),
    [
        ({}, True),
        ({"verify": False}, False),
        ({"verify": "false"}, False),
        ({"verify_ssl": "no"}, False),
    ],
)
def test_tls_verification_follows_the_extras(monkeypatch, extra, ssl_context):
    define(monkeypatch, "listing_api", extra=json.dumps(extra))
    client = ListingApiHook().get_conn()
    assert isinstance(client, ListingApi) and client.ssl_context is ssl_context


def test_an_unreadable_ca_bundle_names_the_connection(monkeypatch):
    define(monkeypatch, "payment_api", extra=json.dumps({"verify": "/nonexistent/ca.pem"}))
    with pytest.raises(ValueError, match="'payment_api'.*CA bundle"):
        PaymentApiHook().get_conn()


def test_a_connection_without_the_key_says_what_to_set(monkeypatch):
    define(monkeypatch, "payment_api", password=None)
    with pytest.raises(ValueError, match="password = app key"):
        PaymentApiHook().get_conn()
