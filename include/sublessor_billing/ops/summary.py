"""The figures of one day for the Billing page, its API and the metrics (index-backed SQL).

A day is a calendar day in Asia/Shanghai. A call belongs to the day (and hour)
it was received (``received_at``, seconds after it ended), an order to the day it
was made (``created_at``: allocated by the charge task, minutes after the call),
whatever its status now, an offline decision to the day it was made. These are
the database server's clock: see ``ops.clock`` for how days and times are kept
in Asia/Shanghai whatever zone the server runs in.
Accounting, which allocates by the call's ``start_time`` date, may put a call
received just after midnight on the day before. Pending orders, the quarantine,
the broker sync and the K3 export are shown as they are now, whatever the day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sublessor_billing.calls.held import count_held, held_calls
from sublessor_billing.calls.rules import FilterRule
from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import (
    CALL_LOG,
    JOB_CURSOR,
    K3_EXPORT_STATE,
    OFFLINE_EVENT,
    PAYMENT_LOG,
)
from sublessor_billing.db.transaction import read_only
from sublessor_billing.k3.plan import ExportState
from sublessor_billing.ops import quarantine_ops
from sublessor_billing.ops.alert_state import active_alerts
from sublessor_billing.ops.clock import Day, in_shanghai
from sublessor_billing.ops.pending import held_back_orders, pending_orders
from sublessor_billing.payments.outcomes import SETTLED, PaymentStatus

RULES = {
    FilterRule.UNJUDGED: "not judged yet (held calls apart)",
    FilterRule.VALID: "valid",
    FilterRule.NOT_CONNECTED: "not connected",
    FilterRule.TOO_SHORT: "too short",
    FilterRule.REPEAT: "repeat",
    FilterRule.BROKER: "broker",
}
OUTCOMES = tuple(status.value for status in (*SETTLED, PaymentStatus.PENDING))
# The job_cursor rows of the broker phone sync (broker_sync.sync's cursor names).
_SYNC_CURSORS = ("broker_phone_sync", "broker_phone_sync_full")

# The day's calls: a range of idx_received (received_at, filter_rule), index only.
# The day's orders: a range of idx_created (created_at, status, amount), index only.
# Params: the window's start, then the window (database clock). ORDER BY NULL:
# MariaDB and MySQL 5.7 would otherwise sort the groups.
_CALLS_BY_HOUR = (
    "SELECT FLOOR(TIMESTAMPDIFF(SECOND, %s, received_at) / 3600) AS h, filter_rule, COUNT(*)"
    f" FROM {CALL_LOG} FORCE INDEX (idx_received)"
    " WHERE received_at >= %s AND received_at < %s GROUP BY h, filter_rule ORDER BY NULL"
)
_CHARGES_BY_HOUR = (
    "SELECT FLOOR(TIMESTAMPDIFF(SECOND, %s, created_at) / 3600) AS h, status, COUNT(*),"
    f" SUM(amount) FROM {PAYMENT_LOG} FORCE INDEX (idx_created)"
    " WHERE created_at >= %s AND created_at < %s GROUP BY h, status ORDER BY NULL"
)
SUMMARY_QUERIES = {"calls_by_hour": _CALLS_BY_HOUR, "charges_by_hour": _CHARGES_BY_HOUR}


def hourly_params(day: Day) -> tuple:
    """The parameters of the two hourly queries."""
    return (day.db_window[0], *day.db_window)


def calls_and_charges(cur: Any, day: Day) -> dict:
    """Calls per filter_rule, orders per outcome (count, fen), revenue, and the same per hour."""
    hours = [{"hour": h, "calls": 0, "valid": 0, "charged": 0, "revenue_fen": 0} for h in range(24)]
    by_rule = dict.fromkeys(RULES, 0)
    cur.execute(_CALLS_BY_HOUR, hourly_params(day))
    for hour, rule, count in cur.fetchall():
        by_rule[int(rule)] = by_rule.get(int(rule), 0) + int(count)
        hours[int(hour)]["calls"] += int(count)
        if int(rule) == FilterRule.VALID:
            hours[int(hour)]["valid"] += int(count)
    outcomes = {name: {"count": 0, "amount_fen": 0} for name in OUTCOMES}
    cur.execute(_CHARGES_BY_HOUR, hourly_params(day))
    for hour, status, count, amount in cur.fetchall():
        slot = outcomes.setdefault(str(status), {"count": 0, "amount_fen": 0})
        slot["count"] += int(count)
        slot["amount_fen"] += int(amount or 0)
        if status == PaymentStatus.SUCCESS:
            hours[int(hour)]["charged"] += int(count)
            hours[int(hour)]["revenue_fen"] += int(amount or 0)
    held = count_held(cur, received=day.db_window)  # rule 0 too, but judged: not waiting
    total = sum(by_rule.values())
    by_rule[FilterRule.UNJUDGED] -= held
    return {
        "calls": {
            "total": total,
            "valid": by_rule[FilterRule.VALID],
            "held": held,
            "by_filter_rule": {str(int(rule)): n for rule, n in sorted(by_rule.items())},
        },
        "charges": {
            "orders": sum(o["count"] for o in outcomes.values()),
            "by_outcome": outcomes,
            "revenue_fen": outcomes[PaymentStatus.SUCCESS]["amount_fen"],
        },
        "hourly": hours,
    }


def offline_decisions(cur: Any, day: Day, *, limit: int = 100) -> dict:
    """Decisions to take a sublessor's listings offline made that day, delivered or not."""
    cur.execute(
        f"SELECT status, COUNT(*), COUNT(DISTINCT sublessor_id) FROM {OFFLINE_EVENT}"
        " WHERE created_at >= %s AND created_at < %s GROUP BY status",
        day.db_window,
    )
    by_status = {str(s): {"decisions": int(n), "sublessors": int(u)} for s, n, u in cur.fetchall()}
    # Sublessors taken (or being taken) offline: a superseded decision takes no one offline.
    cur.execute(
        f"SELECT COUNT(DISTINCT sublessor_id) FROM {OFFLINE_EVENT}"
        " WHERE created_at >= %s AND created_at < %s AND status IN ('done', 'pending')",
        day.db_window,
    )
    sublessors = int(cur.fetchone()[0])
    cur.execute(f"SELECT COUNT(*) FROM {OFFLINE_EVENT} WHERE status = 'pending'")
    undelivered_all_days = int(cur.fetchone()[0])
    cur.execute(
        "SELECT id, sublessor_id, status, offlined, attempts, last_error, trigger_order_id,"
        f" created_at, done_at FROM {OFFLINE_EVENT}"
        " WHERE created_at >= %s AND created_at < %s ORDER BY created_at DESC, id DESC LIMIT %s",
        (*day.db_window, limit),
    )
    keys = (
        "id", "sublessor_id", "status", "offlined", "attempts", "last_error",
        "trigger_order_id", "created_at", "done_at",
    )  # fmt: skip
    return {
        "decisions": sum(v["decisions"] for v in by_status.values()),
        "sublessors": sublessors,
        "delivered": by_status.get("done", {}).get("decisions", 0),
        "undelivered": by_status.get("pending", {}).get("decisions", 0),
        "undelivered_all_days": undelivered_all_days,
        "superseded": by_status.get("superseded", {}).get("decisions", 0),
        "by_status": by_status,
        "rows": [dict(zip(keys, row, strict=True)) for row in cur.fetchall()],
    }


def broker_phone_sync(cur: Any) -> dict:
    """The sync's high-water (source local time) and its last full resync, from job_cursor."""
    # updated_at too, which db.job_cursor does not read: this query is the page's own.
    cur.execute(
        f"SELECT name, position_time, updated_at FROM {JOB_CURSOR}"
        f" WHERE name IN ({marks(_SYNC_CURSORS)})",
        _SYNC_CURSORS,
    )
    rows = {name: (position, updated) for name, position, updated in cur.fetchall()}
    high_water, cursor_updated = rows.get(_SYNC_CURSORS[0], (None, None))
    full_at, _ = rows.get(_SYNC_CURSORS[1], (None, None))
    return {
        "high_water": high_water,
        "cursor_updated_at": cursor_updated,
        "full_resync_at": full_at,
    }


def k3_export(cur: Any, *, limit: int = 50) -> dict:
    """Contracts K3 refused (newest first) and creates still in flight."""
    cur.execute(f"SELECT state, COUNT(*) FROM {K3_EXPORT_STATE} GROUP BY state")
    by_state = {str(s): int(n) for s, n in cur.fetchall()}
    cur.execute(
        "SELECT contract_id, contract_no, attempts, last_error, updated_at"
        f" FROM {K3_EXPORT_STATE} WHERE state = %s"
        " ORDER BY updated_at DESC LIMIT %s",
        (ExportState.REFUSED, limit),
    )
    keys = ("contract_id", "contract_no", "attempts", "last_error", "updated_at")
    return {
        "refused": by_state.get(ExportState.REFUSED, 0),
        "in_flight": by_state.get(ExportState.IN_FLIGHT, 0),
        "exported": by_state.get(ExportState.EXPORTED, 0),
        "errors": [dict(zip(keys, row, strict=True)) for row in cur.fetchall()],
    }


def quarantine(cur: Any, *, limit: int = 50) -> dict:
    return {
        "open": quarantine_ops.open_count(cur),
        "by_reason": quarantine_ops.open_by_reason(cur),
        "newest": quarantine_ops.list_rows(cur, limit=limit),
    }


def day_summary(conn: Any, day: date) -> dict:
    """Everything the page shows for ``day``, read in one consistent snapshot."""
    with read_only(conn) as cur:
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        window = Day(day).on_database_clock(cur)
        cur.execute("SELECT NOW(3)")
        summary = {"day": day.isoformat(), "database_time": cur.fetchone()[0]}
        summary.update(calls_and_charges(cur, window))
        summary["pending"] = pending_orders(cur)
        summary["held_back_orders"] = held_back_orders(cur)
        summary["held_calls"] = {"count": count_held(cur), "calls": held_calls(cur, limit=50)}
        summary["offline"] = offline_decisions(cur, window)
        summary["quarantine"] = quarantine(cur)
        summary["broker_phone_sync"] = broker_phone_sync(cur)
        summary["k3_export"] = k3_export(cur)
        summary["alerts"] = active_alerts(cur)
    return in_shanghai(summary, window.shift)
