"""Metric values of the billing pipeline, named under one prefix (emitting them is Airflow's job).

Gauges are today's figures (the page's numbers) and the state now; they can be
sent any number of times. Counters count the calls judged since the previous
check, by rule, from a cursor in ``job_cursor`` that moves before they are
sent: a rerun never counts a call twice (a crash between the two loses that
window's increments instead).
"""

from __future__ import annotations

from typing import Any

from sublessor_billing.calls.rules import FilterRule
from sublessor_billing.db import job_cursor
from sublessor_billing.db.tables import CALL_LOG
from sublessor_billing.db.transaction import transaction

PREFIX = "sublessor_billing"
JUDGED_CURSOR = "billing_metrics_judged"
# A judge transaction commits within seconds; calls judged in the last minute are
# left to the next window, so one still being committed is not skipped.
SETTLE_SECONDS = 60
_JUDGED_RULES = ", ".join(f"{rule:d}" for rule in FilterRule if rule is not FilterRule.UNJUDGED)


def gauges(summary: dict) -> dict[str, float]:
    """Gauges from ``summary.day_summary`` of today."""
    values: dict[str, float] = {
        "calls.today.total": summary["calls"]["total"],
        "revenue.today_fen": summary["charges"]["revenue_fen"],
        "pending.count": summary["pending"]["count"],
        "pending.oldest_age_seconds": summary["pending"]["oldest_age_seconds"] or 0,
        "orders.held_back": summary["held_back_orders"]["count"],
        "calls.held": summary["held_calls"]["count"],
        "calls.today.held": summary["calls"]["held"],
        "quarantine.open": summary["quarantine"]["open"],
        "offline.today.undelivered": summary["offline"]["undelivered"],
        "offline.undelivered": summary["offline"]["undelivered_all_days"],
        "k3.refused": summary["k3_export"]["refused"],
    }
    for rule, count in summary["calls"]["by_filter_rule"].items():
        values[f"calls.today.rule_{rule}"] = count
    for outcome, figures in summary["charges"]["by_outcome"].items():
        values[f"charges.today.{outcome}"] = figures["count"]
    return {f"{PREFIX}.{name}": float(value) for name, value in values.items()}


def judged_since_last_check(conn: Any) -> dict[str, int]:
    """Counter increments: calls judged since the previous call, by rule (committed cursor)."""
    with transaction(conn) as cur:
        cur.execute(
            "SELECT NOW() - INTERVAL %s SECOND", (SETTLE_SECONDS,)
        )  # whole seconds, as position_time keeps them
        end = cur.fetchone()[0]
        job_cursor.ensure(cur, JUDGED_CURSOR, None)  # a row to lock: no gap lock on a first run
        position = job_cursor.read(cur, JUDGED_CURSOR, for_update=True)
        start = position.position_time if position else None
        counts: dict[str, int] = {}
        if start is not None and end > start:
            # A range of idx_filter_rule (filter_rule, judged_at, ...) per rule value.
            cur.execute(
                f"SELECT filter_rule, COUNT(*) FROM {CALL_LOG}"
                f" WHERE filter_rule IN ({_JUDGED_RULES}) AND judged_at >= %s AND judged_at < %s"
                " GROUP BY filter_rule",
                (start, end),
            )
            counts = {f"{PREFIX}.calls.judged.rule_{rule}": int(n) for rule, n in cur.fetchall()}
        if start is None or end > start:
            job_cursor.save_time(cur, JUDGED_CURSOR, end)
    return counts
