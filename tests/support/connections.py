"""Airflow connections of the tests, as the JSON of ``AIRFLOW_CONN_<ID>`` variables.

MySQL: ``MySqlTarget.airflow_connection()`` (sublessor_billing.db.connect).
"""

from __future__ import annotations

import json
from typing import Any

from sublessor_billing.sandbox.k3_cloud import DEFAULT_ACCT_ID

# The credentials the sandboxes are started with.
APP_ID = "sublessor"
PAYMENT_KEY = "test-payment-key"
LISTING_KEY = "test-listing-key"
K3_USER, K3_PASSWORD, K3_FORM = "api_user", "s3cret-K3-pw", "SUBL_Contract"


def amqp_connection(names: dict[str, str]) -> dict[str, Any]:
    """``call400_amqp`` on the machine's RabbitMQ, for these exchange / routing key / queue."""
    return {
        "conn_type": "amqp",
        "host": "127.0.0.1",
        "port": 5672,
        "login": "guest",
        "password": "guest",
        "schema": "/",
        "extra": json.dumps(names),
    }


def signed_http_connection(url: str, key: str, login: str = APP_ID) -> dict[str, Any]:
    """``payment_api`` / ``listing_api``: a sandbox's URL, app id (login) and app key (password)."""
    host, port = url.rsplit(":", 1)
    return {"conn_type": "http", "host": host, "port": int(port), "login": login, "password": key}


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
