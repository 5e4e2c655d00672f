"""What the Billing page must show for a day, computed by the test's own SQL (not the page's)."""

from __future__ import annotations

from datetime import date, timedelta


def rows(conn, sql: str, params=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        found = list(cur.fetchall())
    conn.rollback()
    return found


def figures(conn, day: date) -> dict[str, str]:
    """``data-metric`` name -> the value the page must carry (as text)."""
    lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
    in_day = "start_time >= %s AND start_time < %s"
    by_rule = dict(
        rows(
            conn,
            f"SELECT filter_rule, COUNT(*) FROM sublessor_call_log_201409 WHERE {in_day} GROUP BY 1",
            (lo, hi),
        )
    )
    charges = {
        status: (n, amount)
        for status, n, amount in rows(
            conn,
            "SELECT p.status, COUNT(*), SUM(p.amount) FROM sublessor_call_payment_log_201409 p"
            " JOIN sublessor_call_log_201409 c ON c.call_id = p.call_id"
            f" WHERE c.{in_day} GROUP BY p.status",
            (lo, hi),
        )
    }
    offline = dict(
        rows(
            conn,
            "SELECT status, COUNT(*) FROM sublessor_offline_event"
            " WHERE created_at >= %s AND created_at < %s GROUP BY status",
            (lo, hi),
        )
    )
    [(offline_sublessors,)] = rows(
        conn,
        "SELECT COUNT(DISTINCT sublessor_id) FROM sublessor_offline_event"
        " WHERE created_at >= %s AND created_at < %s",
        (lo, hi),
    )
    [(pending,)] = rows(
        conn, "SELECT COUNT(*) FROM sublessor_call_payment_log_201409 WHERE status = 'pending'"
    )
    [(open_rows,)] = rows(
        conn, "SELECT COUNT(*) FROM call400_quarantine WHERE status = 'quarantined'"
    )
    k3 = dict(rows(conn, "SELECT state, COUNT(*) FROM k3_contract_export_state GROUP BY state"))
    [(high_water,)] = rows(
        conn, "SELECT position_time FROM job_cursor WHERE name = 'broker_phone_sync'"
    )
    expected = {
        "calls.total": sum(by_rule.values()),
        "calls.valid": by_rule.get(1, 0),
        "charges.success": charges.get("success", (0, 0))[0],
        "charges.orders": sum(n for n, _ in charges.values()),
        "charges.revenue_fen": int(charges.get("success", (0, 0))[1] or 0),
        "pending.count": pending,
        "offline.sublessors": offline_sublessors,
        "offline.delivered": offline.get("done", 0),
        "offline.undelivered": offline.get("pending", 0),
        "quarantine.open": open_rows,
        "quarantine.open.section": open_rows,
        "k3.refused": k3.get("refused", 0),
        "k3.in_flight": k3.get("in_flight", 0),
        "broker.high_water": high_water.isoformat(sep=" ", timespec="seconds"),
    }
    for rule in range(6):
        expected[f"calls.rule.{rule}"] = by_rule.get(rule, 0)
    for status in ("success", "insufficient", "failed", "pending"):
        n, amount = charges.get(status, (0, 0))
        expected[f"charges.{status}.count"] = n
        expected[f"charges.{status}.amount_fen"] = int(amount or 0)
    return {name: str(value) for name, value in expected.items()}


def hourly(conn, day: date) -> dict[tuple[int, str], int]:
    """(hour, series) -> calls of that hour ('calls'), or successfully charged calls ('charged')."""
    lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
    found = {(h, s): 0 for h in range(24) for s in ("calls", "charged")}
    for hour, n in rows(
        conn,
        "SELECT HOUR(start_time), COUNT(*) FROM sublessor_call_log_201409"
        " WHERE start_time >= %s AND start_time < %s GROUP BY 1",
        (lo, hi),
    ):
        found[(hour, "calls")] = n
    for hour, n in rows(
        conn,
        "SELECT HOUR(c.start_time), COUNT(*) FROM sublessor_call_log_201409 c"
        " JOIN sublessor_call_payment_log_201409 p ON p.call_id = c.call_id AND p.status = 'success'"
        " WHERE c.start_time >= %s AND c.start_time < %s GROUP BY 1",
        (lo, hi),
    ):
        found[(hour, "charged")] = n
    return found


def oldest_pending_age(conn) -> int:
    [(age,)] = rows(
        conn,
        "SELECT TIMESTAMPDIFF(SECOND, MIN(created_at), NOW(3))"
        " FROM sublessor_call_payment_log_201409 WHERE status = 'pending'",
    )
    return int(age)
