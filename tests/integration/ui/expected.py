"""What the Billing page must show for a day, computed by the test's own SQL (not the page's)."""

from __future__ import annotations

from datetime import date, timedelta

# Asia/Shanghai time as the database server's clock writes it
DB_CLOCK = "CONVERT_TZ(%s, '+08:00', @@session.time_zone)"
# Pending orders charging sends; a pending row below 820000000000 is held back (never sent)
PENDING = "FROM sublessor_call_payment_log_201409 WHERE status = 'pending' AND id >= 820000000000"


def rows(conn, sql: str, params=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        found = list(cur.fetchall())
    conn.rollback()
    return found


def figures(conn, day: date) -> dict[str, str]:
    """``data-metric`` name -> the value the page must carry (as text)."""
    lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
    received_in_day = f"received_at >= {DB_CLOCK} AND received_at < {DB_CLOCK}"
    by_rule = dict(
        rows(
            conn,
            "SELECT IF(held_reason IS NULL, filter_rule, 'held'), COUNT(*)"
            f" FROM sublessor_call_log_201409 WHERE {received_in_day} GROUP BY 1",
            (lo, hi),
        )
    )
    by_rule = {k if k == "held" else int(k): n for k, n in by_rule.items()}
    made_in_day = f"created_at >= {DB_CLOCK} AND created_at < {DB_CLOCK}"
    charges = {
        status: (n, amount)
        for status, n, amount in rows(
            conn,
            "SELECT status, COUNT(*), SUM(amount) FROM sublessor_call_payment_log_201409"
            f" WHERE {made_in_day} GROUP BY status",
            (lo, hi),
        )
    }
    offline = dict(
        rows(
            conn,
            f"SELECT status, COUNT(*) FROM sublessor_offline_event WHERE {made_in_day}"
            " GROUP BY status",
            (lo, hi),
        )
    )
    [(offline_sublessors,)] = rows(
        conn,
        "SELECT COUNT(DISTINCT sublessor_id) FROM sublessor_offline_event"
        f" WHERE {made_in_day} AND status IN ('done', 'pending')",
        (lo, hi),
    )
    [(pending,)] = rows(conn, f"SELECT COUNT(*) {PENDING}")
    [(held_back,)] = rows(
        conn,
        "SELECT COUNT(*) FROM sublessor_call_payment_log_201409"
        " WHERE status = 'pending' AND id < 820000000000",
    )
    [(held_calls,)] = rows(
        conn, "SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE held_reason IS NOT NULL"
    )
    [(open_rows,)] = rows(
        conn, "SELECT COUNT(*) FROM call400_quarantine WHERE status = 'quarantined'"
    )
    k3 = dict(rows(conn, "SELECT state, COUNT(*) FROM k3_contract_export_state GROUP BY state"))
    [(high_water,)] = rows(
        conn, "SELECT position_time FROM job_cursor WHERE name = 'broker_phone_sync'"
    )
    expected = {
        "calls.total": sum(by_rule.values()),  # held calls included
        "calls.valid": by_rule.get(1, 0),
        "charges.success": charges.get("success", (0, 0))[0],
        "charges.orders": sum(n for n, _ in charges.values()),
        "charges.revenue_fen": int(charges.get("success", (0, 0))[1] or 0),
        "pending.count": pending,
        "orders.held_back": held_back,
        "calls.held": held_calls,
        "calls.rule.held": by_rule.get("held", 0),
        "offline.sublessors": offline_sublessors,
        "offline.delivered": offline.get("done", 0),
        "offline.undelivered": offline.get("pending", 0),
        "offline.undelivered_all_days": rows(
            conn, "SELECT COUNT(*) FROM sublessor_offline_event WHERE status = 'pending'"
        )[0][0],
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
    """(hour, series) -> calls received in that hour ('calls'), successful orders made in it ('charged')."""
    lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
    found = {(h, s): 0 for h in range(24) for s in ("calls", "charged")}
    for hour, n in rows(
        conn,
        "SELECT HOUR(CONVERT_TZ(received_at, @@session.time_zone, '+08:00')), COUNT(*)"
        " FROM sublessor_call_log_201409"
        f" WHERE received_at >= {DB_CLOCK} AND received_at < {DB_CLOCK} GROUP BY 1",
        (lo, hi),
    ):
        found[(hour, "calls")] = n
    for hour, n in rows(
        conn,
        f"SELECT HOUR(CONVERT_TZ(created_at, @@session.time_zone, '+08:00')), COUNT(*)"
        " FROM sublessor_call_payment_log_201409"
        f" WHERE status = 'success' AND created_at >= {DB_CLOCK} AND created_at < {DB_CLOCK}"
        " GROUP BY 1",
        (lo, hi),
    ):
        found[(hour, "charged")] = n
    return found


def oldest_pending_age(conn) -> int:
    [(age,)] = rows(
        conn,
        f"SELECT TIMESTAMPDIFF(SECOND, created_at, NOW(3)) {PENDING} ORDER BY created_at LIMIT 1",
    )
    return int(age)
