"""
### billing_alerts

Every 5 minutes, watches the billing pipeline and tells people when it needs them
(docs/billing_operations.md):

- an order pending longer than Variable `billing_alert_pending_minutes` (default 30);
- no successful `call400_billing` run for Variable `billing_alert_no_success_minutes`
  (default 15);
- messages quarantined since the last check;
- failed runs of `broker_phone_sync`, `call400_billing`, `accounting_income` or
  `k3_contract_export` since the last check, however they failed.

Notices go as JSON to the webhook of the http connection `billing_alert_webhook`
(none defined: alerts are off, logged once). A firing alert is repeated every
Variable `billing_alert_repeat_minutes` (default 60) and a resolved one is said
once. The alert state is in `user_prop_db.billing_alert` (shown on the Billing page).

The same task emits the metrics (`sublessor_billing.*`: today's calls by rule,
charges by outcome, revenue, pending orders and the oldest's age, the quarantine)
through Airflow's metrics ([metrics] statsd / OpenTelemetry settings).
Safe to rerun: gauges are states, the judged-calls counters advance a cursor first.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, dag, task

from sublessor_airflow.dag_defaults import START_DATE, default_args


@dag(
    dag_id="billing_alerts",
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(
        retries=2, retry_delay=timedelta(seconds=30), execution_timeout=timedelta(minutes=4)
    ),
    tags=["sublessor_billing", "alerts"],
    doc_md=__doc__,
)
def billing_alerts():
    @task(task_id="check_billing")
    def check_billing(ti=None) -> dict:
        """Emit the metrics, evaluate the alerts, send what is due."""
        # Imported here: the checks pull in MySQL and the domain code, not needed to parse.
        from sublessor_airflow.alerts.checks import run_billing_checks

        return run_billing_checks(
            successful_runs_of=lambda dag_id: ti.get_dr_count(dag_id=dag_id, states=["success"]),
            failed_runs_of=lambda dag_id: ti.get_dr_count(dag_id=dag_id, states=["failed"]),
        )

    check_billing()


billing_alerts()
