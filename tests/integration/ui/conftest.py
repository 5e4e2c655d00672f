"""One Airflow api-server with the plugin for the module; a freshly seeded user_prop_db per test.

``user_prop_db`` is defined only in Airflow's metadata database, through the
REST API (as an operator would in Admin -> Connections), never in the
environment: the page and the quarantine command must both find it there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from billing_seed import DAY, seed

from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_migrations
from sublessor_billing.demo.airflow_server import AirflowApiServer

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server() -> Iterator[AirflowApiServer]:
    with AirflowApiServer(REPO) as api:
        yield api


@pytest.fixture(scope="module")
def tokens(server) -> dict[str, str]:
    return {user: server.token(user) for user in ("editor", "viewer")}


@pytest.fixture
def billing_db(database_factory, server, tokens) -> MySqlTarget:
    """A seeded day in a fresh database, which Airflow's ``user_prop_db`` connection now names."""
    target = database_factory("billingui")
    conn = connect(target)
    apply_migrations(conn)
    seed(conn, DAY)
    conn.close()
    define_user_prop_db(server, tokens["editor"], target)
    return target


def define_user_prop_db(server: AirflowApiServer, token: str, target: MySqlTarget) -> None:
    body = {"connection_id": "user_prop_db", **target.airflow_connection()}
    status, answer = server.request("POST", "/api/v2/connections", token=token, body=body)
    if status == 409:
        status, answer = server.request(
            "PATCH", "/api/v2/connections/user_prop_db", token=token, body=body
        )
    assert status in (200, 201), answer
