"""Helpers shared by the money-path tests (importable: this folder is on sys.path under pytest)."""

from __future__ import annotations

from sublessor_billing.db.connect import connect

APP_ID = "sublessor"
PAYMENT_KEY = "test-payment-key"
LISTING_KEY = "test-listing-key"
PRICE_FEN = 4000


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
