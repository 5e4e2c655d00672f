"""Airflow runs the alerts: `airflow dags test billing_alerts`, and a task failure calling the notifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from webhook import WebhookReceiver

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
AIRFLOW = Path(sys.executable).parent / "airflow"

FAILING_DAG = '''
"""
### billing_failure_probe

A task that fails for good, with the billing DAGs' failure callback.
"""
from datetime import UTC, datetime

from airflow.sdk import dag, task

from sublessor_airflow.alerts.notifier import BillingAlertNotifier


@dag(
    dag_id="billing_failure_probe",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    default_args={"retries": 0, "on_failure_callback": [BillingAlertNotifier()]},
    tags=["test"],
)
def probe():
    @task
    def charge():
        raise RuntimeError("payment center answered HTTP 503")

    charge()


probe()
'''


def airflow(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(AIRFLOW), *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_airflow_runs_the_check_and_the_failure_callback(
    user_prop_conn, user_prop_target, tmp_path
):
    with user_prop_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject,"
            " status, created_at) VALUES ('old', 1, 4000, 's', 'pending', NOW(3) - INTERVAL 2 HOUR)"
        )
    user_prop_conn.commit()
    probe_dags = tmp_path / "dags"
    probe_dags.mkdir()
    (probe_dags / "billing_failure_probe.py").write_text(FAILING_DAG)

    with WebhookReceiver() as hook:
        env = {
            **os.environ,
            "AIRFLOW_HOME": tempfile.mkdtemp(prefix="billing-alerts-"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO / "plugins")]),
            "AIRFLOW_CONN_USER_PROP_DB": json.dumps(user_prop_target.airflow_connection()),
            "AIRFLOW_CONN_BILLING_ALERT_WEBHOOK": json.dumps(hook.connection()),
            "AIRFLOW_VAR_BILLING_ALERT_PENDING_MINUTES": "60",
        }
        migrated = airflow(env, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]

        checked = airflow(env, "dags", "test", "billing_alerts")
        output = checked.stdout + checked.stderr
        assert checked.returncode == 0 and "state=success" in output, output[-4000:]
        assert hook.alerts() == [("pending_too_old", "firing")]
        assert hook.received[0]["threshold_minutes"] == 60  # the Variable, read by the task

        failed = airflow({**env, "AIRFLOW__CORE__DAGS_FOLDER": str(probe_dags)},
                         "dags", "test", "billing_failure_probe")  # fmt: skip
        assert "state=failed" in failed.stdout + failed.stderr, failed.stderr[-4000:]
    [failure] = hook.received[1:]
    assert (failure["alert"], failure["dag_id"], failure["task_id"]) == (
        "task_failed",
        "billing_failure_probe",
        "charge",
    )
    assert failure["exception"] == "RuntimeError: payment center answered HTTP 503"
    with user_prop_conn.cursor() as cur:
        cur.execute("SELECT name, active FROM billing_alert ORDER BY name")
        assert cur.fetchall() == (
            ("held_back_orders", 0),
            ("held_calls", 0),
            ("no_successful_billing_run", 0),
            ("pending_too_old", 1),
            ("quarantine_growth", 0),
            ("run_failed.accounting_income", 0),  # baselines of the failed-run counts
            ("run_failed.broker_phone_sync", 0),
            ("run_failed.call400_billing", 0),
            ("run_failed.k3_contract_export", 0),
        )
    user_prop_conn.rollback()
