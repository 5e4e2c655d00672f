"""The billing_alerts check: evaluate the alerts, notify, and emit the metrics through Airflow."""

from __future__ import annotations

import logging
from collections.abc import Callable

from airflow.sdk.observability.stats import Stats

from sublessor_airflow.alerts.notifier import BillingAlertNotifier
from sublessor_airflow.hooks.mysql import user_prop_db
from sublessor_airflow.variables import get_int
from sublessor_billing.db.transaction import transaction
from sublessor_billing.ops import alert_state, alerts, metrics
from sublessor_billing.ops.clock import today
from sublessor_billing.ops.summary import day_summary

log = logging.getLogger(__name__)

BILLING_DAG_ID = "call400_billing"
# The DAGs whose failed runs are alerted on (``run_failed``).
WATCHED_DAG_IDS = (
    "broker_phone_sync",
    "call400_billing",
    "accounting_income",
    "k3_contract_export",
)


def read_settings() -> alerts.AlertSettings:
    """The alert thresholds from their Variables (inside the task)."""
    return alerts.AlertSettings(
        pending_minutes=get_int(alerts.PENDING_MINUTES),
        no_success_minutes=get_int(alerts.NO_SUCCESS_MINUTES),
        repeat_minutes=get_int(alerts.REPEAT_MINUTES),
    )


def run_billing_checks(
    *,
    successful_runs_of: Callable[[str], int],
    failed_runs_of: Callable[[str], int] | None = None,
    settings: alerts.AlertSettings | None = None,
    notifier: BillingAlertNotifier | None = None,
) -> dict:
    """One check: metrics out, alert rows updated, notices sent. Returns what it did (XCom).

    ``successful_runs_of(dag_id)`` counts the successful runs of a DAG (in a task:
    ``ti.get_dr_count(dag_id=..., states=["success"])``); ``failed_runs_of(dag_id)``
    counts its failed runs, for the DAGs of ``WATCHED_DAG_IDS`` (None: not watched).
    """
    settings = settings or read_settings()
    notifier = notifier or BillingAlertNotifier()
    conn = user_prop_db()
    try:
        gauges = metrics.gauges(day_summary(conn, today()))
        counters = metrics.judged_since_last_check(conn)
        for name, value in gauges.items():
            Stats.gauge(name, value)
        for name, count in counters.items():
            Stats.incr(name, count)
        runs = successful_runs_of(BILLING_DAG_ID)
        failed = (
            {dag_id: failed_runs_of(dag_id) for dag_id in WATCHED_DAG_IDS}
            if failed_runs_of is not None
            else None
        )
        sent = 0
        # A notice is recorded as sent in the evaluation's transaction: when a send fails,
        # nothing is recorded and the retry sends again.
        with transaction(conn) as cur:
            notices = alerts.evaluate(cur, settings, successful_runs=runs, failed_runs=failed)
            for notice in notices:
                log.warning("Billing alert %s (%s): %s", notice.alert, notice.state, notice.summary)
                if notifier.send(notice.payload()):
                    alert_state.mark_notified(cur, notice)
                    sent += 1
                    Stats.incr(f"{metrics.PREFIX}.alerts.{notice.alert}")
    finally:
        conn.close()
    return {
        "notices": [n.payload() for n in notices],
        "sent": sent,
        "gauges": gauges,
        "counters": counters,
        "successful_billing_runs": runs,
        "failed_runs": failed,
    }
