"""Readers of the money-path tests: the payment log and the offline decisions, on fresh connections."""

from __future__ import annotations

from sublessor_billing.db.connect import connect

PRICE_FEN = 4000  # payment_price_per_call (40 yuan) in fen


def payment_rows(target) -> dict[str, dict]:
    """call_id -> payment log row, read on a fresh connection."""
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT call_id, id, sublessor_id, amount, status, result_code, balance_after, "
                "attempts, last_error FROM sublessor_call_payment_log_201409"
            )
            cols = [d[0] for d in cur.description]
            return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
    finally:
        conn.close()


def offline_rows(target) -> list[dict]:
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM sublessor_offline_event ORDER BY id")
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()
