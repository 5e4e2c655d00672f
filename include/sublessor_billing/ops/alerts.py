"""Alert conditions of the billing_alerts DAG (their rows and notices: ``ops.alert_state``).

Six alerts, each a row of ``billing_alert`` (locked while it is evaluated):

* ``pending_too_old``: an order charging sends (id >= ORDER_ID_MIN) has been
  pending longer than the threshold.
* ``held_back_orders``: pending rows below ORDER_ID_MIN exist; charging never
  sends them (condition: fires while any exists).
* ``held_calls``: calls the judge held aside exist (condition: fires while any
  exists); they are neither judged nor charged until released.
* ``no_successful_billing_run``: the number of successful call400_billing runs has
  not grown for the threshold (the row keeps the count and when it last grew).
* ``quarantine_growth``: messages were quarantined since the last check (the row
  keeps the newest quarantine id already reported).
* ``run_failed``: runs of a billing DAG failed since the last check, however they
  failed (a task's failure callback does not fire for a task killed by the OOM
  killer, or marked failed by hand); one row per DAG, ``run_failed.<dag_id>``,
  keeps the count of failed runs already reported.

A condition alert notifies when it starts firing, again every ``repeat_minutes``
while it fires, and once when it is resolved. ``evaluate`` updates the rows in
the caller's transaction and returns the notices; the caller sends them, marks
each one sent (``alert_state.mark_notified``: one not sent, e.g. alerts off, stays due),
then commits: a crash in between sends a notice twice rather than never.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sublessor_billing import config
from sublessor_billing.calls.held import count_held
from sublessor_billing.db.tables import ALERT, QUARANTINE
from sublessor_billing.ops.alert_state import (
    FIRING,
    AlertSettings,
    Notice,
    condition,
    lock_row,
)
from sublessor_billing.ops.clock import shift_of
from sublessor_billing.ops.pending import HELD_BACK_RUNBOOK, held_back_orders, pending_orders

PENDING_TOO_OLD = "pending_too_old"
NO_SUCCESSFUL_RUN = "no_successful_billing_run"
QUARANTINE_GROWTH = "quarantine_growth"
HELD_BACK_ORDERS = "held_back_orders"
HELD_CALLS = "held_calls"
RUN_FAILED = "run_failed"

# Variables of the billing_alerts DAG (read by its task; ranges in config).
PENDING_MINUTES = config.BILLING_ALERT_PENDING_MINUTES
NO_SUCCESS_MINUTES = config.BILLING_ALERT_NO_SUCCESS_MINUTES
REPEAT_MINUTES = config.BILLING_ALERT_REPEAT_MINUTES
# A quarantine insert commits within seconds; rows younger than this are left to the next check.
SETTLE_SECONDS = 60


def evaluate(
    cur: Any,
    settings: AlertSettings,
    *,
    successful_runs: int,
    failed_runs: dict[str, int] | None = None,
) -> list[Notice]:
    """Bring every alert row up to date; return what must be notified (not committed).

    ``failed_runs`` maps each watched DAG to its count of failed runs.
    """
    cur.execute("SELECT NOW(3)")
    now = cur.fetchone()[0]
    notices = [
        *_pending(cur, now, settings),
        *_held_back(cur, now, settings),
        *_held_calls(cur, now, settings),
        *_no_successful_run(cur, now, settings, successful_runs),
        *_quarantine_growth(cur, now),
        *(
            n
            for dag_id, count in (failed_runs or {}).items()
            for n in _run_failed(cur, dag_id, count)
        ),
    ]
    return notices


def _pending(cur: Any, now: datetime, settings: AlertSettings) -> list[Notice]:
    row = lock_row(cur, PENDING_TOO_OLD)
    pending = pending_orders(cur, limit=0)
    count, oldest_id, age = (
        pending["count"],
        pending["oldest_order_id"],
        pending["oldest_age_seconds"],
    )
    firing = age is not None and age >= settings.pending_minutes * 60
    details = {
        "pending_orders": count,
        "oldest_order_id": oldest_id,
        "oldest_age_seconds": age,
        "threshold_minutes": settings.pending_minutes,
    }
    summary = (
        f"{count} order(s) pending; the oldest, order {oldest_id}, for {int(age or 0) // 60} min"
        f" (threshold {settings.pending_minutes} min): see docs/payments.md"
        " 'A pending row that stays stuck'"
        if firing
        else f"no order pending longer than {settings.pending_minutes} min"
    )
    return condition(cur, row, now, settings, firing, summary, details)


def _held_back(cur: Any, now: datetime, settings: AlertSettings) -> list[Notice]:
    row = lock_row(cur, HELD_BACK_ORDERS)
    held = held_back_orders(cur)
    firing = held["count"] > 0
    summary = (
        f"{held['count']} pending order(s) below 820000000000 are never sent"
        f" (ids {', '.join(map(str, held['ids']))}): see {HELD_BACK_RUNBOOK}"
        if firing
        else "no pending order below 820000000000"
    )
    details = {"held_back_orders": held["count"], "order_ids": held["ids"]}
    return condition(cur, row, now, settings, firing, summary, details)


def _held_calls(cur: Any, now: datetime, settings: AlertSettings) -> list[Notice]:
    row = lock_row(cur, HELD_CALLS)
    held = count_held(cur)
    summary = (
        f"{held} call(s) held by the judge, neither judged nor charged: see the Billing page"
        " and docs/intake.md 'Judging' (python -m sublessor_billing.calls.quarantine held / release)"
        if held
        else "no call held by the judge"
    )
    return condition(cur, row, now, settings, held > 0, summary, {"held_calls": held})


def _no_successful_run(
    cur: Any, now: datetime, settings: AlertSettings, successful_runs: int
) -> list[Notice]:
    row = lock_row(cur, NO_SUCCESSFUL_RUN)
    if row.value is None or successful_runs > row.value:  # grown: a run succeeded
        row.value, row.since = successful_runs, now
        cur.execute(
            f"UPDATE {ALERT} SET value = %s, since = %s WHERE name = %s",
            (successful_runs, now, row.name),
        )
    elif successful_runs < row.value:  # runs deleted from Airflow's database: not a success
        row.value = successful_runs
        cur.execute(f"UPDATE {ALERT} SET value = %s WHERE name = %s", (successful_runs, row.name))
    quiet = now - row.since
    firing = quiet >= timedelta(minutes=settings.no_success_minutes)
    details = {
        "dag_id": "call400_billing",
        "successful_runs": successful_runs,
        # when the count was last seen to grow, in Asia/Shanghai
        "last_success_seen_by": (row.since + shift_of(cur)).isoformat(sep=" "),
        "threshold_minutes": settings.no_success_minutes,
    }
    summary = (
        f"no successful call400_billing run for {int(quiet.total_seconds()) // 60} min"
        f" (threshold {settings.no_success_minutes} min): is it paused, failing or stuck?"
        if firing
        else "call400_billing runs succeed again"
    )
    # `since` is the watched value's clock here, not the firing start: keep it.
    return condition(cur, row, now, settings, firing, summary, details, keep_since=True)


def _quarantine_growth(cur: Any, now: datetime) -> list[Notice]:
    """New quarantined rows, counted once settled (received more than SETTLE_SECONDS ago).

    Ids are allocated at insert and committed in any order: a row with a lower id
    may commit after a higher one was seen. Only rows received SETTLE_SECONDS
    before this check are counted, and the high-water mark is the highest such id,
    so a row whose transaction commits within that lag is never skipped.
    """
    row = lock_row(cur, QUARANTINE_GROWTH)
    settled = "received_at < %s - INTERVAL %s SECOND"
    if row.value is None:  # first check: the baseline, nothing to report yet
        cur.execute(
            f"SELECT IFNULL(MAX(id), 0) FROM {QUARANTINE} WHERE {settled}",
            (now, SETTLE_SECONDS),
        )
        cur.execute(
            f"UPDATE {ALERT} SET value = %s, since = %s WHERE name = %s",
            (int(cur.fetchone()[0]), now, row.name),
        )
        return []
    new_rows = f"FROM {QUARANTINE} WHERE id > %s AND status = 'quarantined' AND {settled}"
    params = (row.value, now, SETTLE_SECONDS)
    cur.execute(f"SELECT COUNT(*), MAX(id) {new_rows}", params)
    new, newest = cur.fetchone()
    if not new:
        cur.execute(f"UPDATE {ALERT} SET active = 0 WHERE name = %s", (row.name,))
        return []
    cur.execute(
        f"SELECT CAST(reason AS BINARY) AS r, COUNT(*) AS n {new_rows}"
        " GROUP BY r ORDER BY n DESC LIMIT 5",
        params,
    )
    reasons = {bytes(r).decode("utf-8", "replace"): int(n) for r, n in cur.fetchall()}
    cur.execute(f"SELECT COUNT(*) FROM {QUARANTINE} WHERE status = 'quarantined'")
    open_rows = int(cur.fetchone()[0])
    summary = (
        f"{new} message(s) quarantined since the last check ({open_rows} open): "
        "see the Billing page"
    )
    cur.execute(
        f"UPDATE {ALERT} SET active = 1, value = %s, since = %s, detail = %s WHERE name = %s",
        (int(newest), now, summary[:1024], row.name),
    )
    details = {"new": int(new), "open": open_rows, "newest_id": int(newest), "reasons": reasons}
    return [Notice(QUARANTINE_GROWTH, FIRING, summary, details)]


def _run_failed(cur: Any, dag_id: str, failed: int) -> list[Notice]:
    """Runs of ``dag_id`` that failed since the last check (the first check sets the baseline)."""
    row = lock_row(cur, f"{RUN_FAILED}.{dag_id}")
    new = 0 if row.value is None else failed - row.value
    # A count that drops (runs deleted from Airflow's database) is the new baseline.
    cur.execute(
        f"UPDATE {ALERT} SET value = %s, active = %s WHERE name = %s",
        (failed, int(new > 0), row.name),
    )
    if new <= 0:
        return []
    summary = (
        f"{new} run(s) of {dag_id} failed since the last check: see the DAG's runs in the"
        " Airflow UI (a failed task names the step; a run with no failed task was killed or"
        " marked failed by hand)"
    )
    details = {"dag_id": dag_id, "new_failed_runs": new, "failed_runs": failed}
    return [Notice(RUN_FAILED, FIRING, summary, details, key=row.name)]
