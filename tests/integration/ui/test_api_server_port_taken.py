"""A port taken between its pick and the api-server's bind: a fresh port, not a timeout."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sublessor_billing.demo import airflow_server
from sublessor_billing.demo.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]


def test_a_taken_port_is_seen_in_the_log_and_the_server_starts_on_a_fresh_one(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as squatter:  # listening: the bind must fail
        taken = squatter.getsockname()[1]
        picks = iter([taken])
        monkeypatch.setattr(airflow_server, "free_port", lambda: next(picks, None) or free_port())
        with airflow_server.AirflowApiServer(REPO) as server:
            assert server.port != taken
            assert server.request("GET", "/api/v2/monitor/health")[0] == 200
            assert str(server.port) in server.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]


def test_a_port_that_stays_taken_fails_naming_the_port(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        taken = squatter.getsockname()[1]
        monkeypatch.setattr(airflow_server, "free_port", lambda: taken)
        server = airflow_server.AirflowApiServer(REPO)
        with pytest.raises(airflow_server.PortTaken, match=f"api-server {taken}"):
            server.start(attempts=1)
        assert not server.home.exists()
