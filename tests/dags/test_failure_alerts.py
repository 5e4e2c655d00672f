"""Every task of the billing DAGs tells the alert webhook when it fails for good."""

from __future__ import annotations

from pathlib import Path

import pytest

from sublessor_airflow.alerts.notifier import BillingAlertNotifier

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
ALERTED = [
    "broker_phone_sync",
    "call400_billing",
    "accounting_income",
    "k3_contract_export",
    "billing_alerts",
]


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


@pytest.mark.parametrize("dag_id", ALERTED)
def test_every_task_has_the_failure_notifier(dag_bag, dag_id) -> None:
    dag = dag_bag.dags.get(dag_id)
    assert dag is not None, dag_bag.import_errors
    for task in dag.tasks:
        callbacks = task.on_failure_callback or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert any(isinstance(c, BillingAlertNotifier) for c in callbacks), task.task_id
