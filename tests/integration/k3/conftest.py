"""K3 export fixtures: a sandbox K3 Cloud on loopback, the Airflow connections, contract seeding."""

from __future__ import annotations

from typing import Any

import pytest
from k3_seed import Contracts, TaskInstanceXCom
from support.connections import K3_FORM, K3_PASSWORD, K3_USER, k3_connection

from sublessor_billing.db.connect import connect
from sublessor_billing.sandbox.k3_cloud import DEFAULT_ACCT_ID, K3CloudSandbox


@pytest.fixture
def k3():
    server = K3CloudSandbox(
        acct_id=DEFAULT_ACCT_ID, username=K3_USER, password=K3_PASSWORD, form_id=K3_FORM
    ).start()
    yield server
    server.stop()


@pytest.fixture
def k3_env(k3, user_prop_target, airflow_connections):
    """Connections ``k3_cloud`` (the sandbox) and ``user_prop_db`` (a fresh database)."""
    airflow_connections("k3_cloud", k3_connection(k3.k3_url))
    airflow_connections("user_prop_db", user_prop_target.airflow_connection())
    return k3


@pytest.fixture
def contracts(user_prop_target):
    conn = connect(user_prop_target)
    yield Contracts(conn)
    conn.close()


@pytest.fixture
def run_export(k3_env):
    """Run ``K3ContractExportOperator.execute`` as a task would; returns (counts, ti)."""
    from sublessor_airflow.operators.k3_contract_export import K3ContractExportOperator

    def run(**kwargs: Any):
        ti = TaskInstanceXCom()
        op = K3ContractExportOperator(task_id="export_contracts", request_timeout=5, **kwargs)
        return op.execute({"ti": ti}), ti

    return run
