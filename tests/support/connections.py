"""Airflow connections of the tests, as the JSON of ``AIRFLOW_CONN_<ID>`` variables.

The builders of the local services are the demo's (``sublessor_billing.demo.connections``:
``amqp_connection``, ``signed_http_connection``); here the sandboxes' test credentials
and K3. MySQL: ``MySqlTarget.airflow_connection()`` (sublessor_billing.db.connect).
"""

from __future__ import annotations

from typing import Any

from sublessor_billing.demo.connections import APP_ID, amqp_connection, signed_http_connection
from sublessor_billing.sandbox.k3_cloud import DEFAULT_ACCT_ID

__all__ = ["APP_ID", "amqp_connection", "k3_connection", "signed_http_connection"]

# The credentials the sandboxes are started with (and APP_ID).
PAYMENT_KEY = "test-payment-key"
LISTING_KEY = "test-listing-key"
K3_USER, K3_PASSWORD, K3_FORM = "api_user", "s3cret-K3-pw", "SUBL_Contract"


def k3_connection(url: str, **overrides: Any) -> dict[str, Any]:
    """``k3_cloud`` on a sandbox K3 Cloud started with K3_USER / K3_PASSWORD / K3_FORM."""
    conn = {
        "conn_type": "http",
        "host": url,
        "login": K3_USER,
        "password": K3_PASSWORD,
        "extra": {"acct_id": DEFAULT_ACCT_ID, "lcid": 2052, "form_id": K3_FORM},
    }
    conn.update(overrides)
    return conn
