"""Airflow runs the alerts: `airflow dags test billing_alerts`, and a task failure calling the notifier."""

from __future__ import annotations

import pytest
from support.airflow import airflow_env, dags_test
from webhook import WebhookReceiver

pytestmark = pytest.mark.integration

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


def test_airflow_runs_the_check_and_the_failure_callback(
    user_prop_conn, user_prop_target, tmp_path, airflow_home
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
        env = airflow_env(
            airflow_home,
            connections={
                "user_prop_db": user_prop_target.airflow_connection(),
                "billing_alert_webhook": hook.connection(),
            },
            variables={"billing_alert_pending_minutes": 60},
        )
        checked = dags_test(env, "billing_alerts")
        assert (checked.returncode, checked.state) == (0, "success"), checked.output[-4000:]
        assert hook.alerts() == [("pending_too_old", "firing")]
        assert hook.received[0]["threshold_minutes"] == 60  # the Variable, read by the task

        failed = dags_test({**env, "AIRFLOW__CORE__DAGS_FOLDER": str(probe_dags)},
                           "billing_failure_probe")  # fmt: skip
        assert failed.state == "failed", failed.output[-4000:]
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
