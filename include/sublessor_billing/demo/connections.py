"""The local MariaDB server and the Airflow connections of the local services.

One builder for the demo, the benchmarks and the tests (which import it): the
server named by ``<PREFIX>_MYSQL_*`` variables, ``call400_amqp`` on the local
RabbitMQ, a signed HTTP sandbox (``payment_api`` / ``listing_api``). A MySQL
connection is ``MySqlTarget.airflow_connection()``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from sublessor_billing.db.connect import MySqlTarget

APP_ID = "sublessor"  # the app id every sandbox is started with


def mysql_server(prefix: str) -> MySqlTarget:
    """The MariaDB server ``<prefix>_MYSQL_HOST / _PORT / _USER / _PASSWORD`` name (local root)."""
    return MySqlTarget(
        host=os.environ.get(f"{prefix}_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get(f"{prefix}_MYSQL_PORT", "3306")),
        user=os.environ.get(f"{prefix}_MYSQL_USER", "root"),
        password=os.environ.get(f"{prefix}_MYSQL_PASSWORD", ""),
    )


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
