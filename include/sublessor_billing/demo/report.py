"""The demo's closing report: what happened to a day of calls, in words and numbers."""

from __future__ import annotations

from typing import Any

from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.tables import (
    CALL_LOG,
    CONTRACT,
    INCOME,
    K3_EXPORT_STATE,
    OFFLINE_EVENT,
    PAYMENT_LOG,
    QUARANTINE,
)

RULES = {
    0: "not judged yet",
    1: "valid, charged",
    2: "not connected",
    3: "too short",
    4: "repeat within the window",
    5: "caller is a broker",
}


def _rows(conn: Any, sql: str, args: tuple = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _table_exists(conn: Any, name: str) -> bool:
    return bool(
        _rows(
            conn,
            "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
            (name,),
        )
    )


def _yuan(fen: int | None) -> str:
    return f"{(fen or 0) / 100:,.2f} yuan"


def render(user_prop: MySqlTarget, extra: dict[str, Any]) -> str:
    conn = connect(user_prop)
    out: list[str] = []
    add = out.append
    add("=" * 72)
    add("Sublessor 400 billing: demo report".center(72))
    add("=" * 72)

    published = extra.get("published", 0)
    logged = _rows(conn, f"SELECT COUNT(*) FROM {CALL_LOG}")[0][0]
    quarantined = _rows(conn, f"SELECT COUNT(*), COALESCE(SUM(seen_count), 0) FROM {QUARANTINE}")[0]
    add(f"\nMessages published by the 400 platform: {published}")
    add(f"  calls logged (one row per call_id):   {logged}")
    add(f"  duplicates absorbed:                  {published - logged - int(quarantined[1])}")
    add(f"  quarantined (invalid):                {quarantined[0]}")
    for reason, n in _rows(
        conn, f"SELECT reason, COUNT(*) FROM {QUARANTINE} GROUP BY reason ORDER BY 2 DESC, 1"
    ):
        add(f"      {n:>3} x {reason[:64]}")

    add("\nCalls per filter_rule:")
    for rule, call_type, n in _rows(
        conn,
        f"SELECT filter_rule, call_type, COUNT(*) FROM {CALL_LOG}"
        " GROUP BY filter_rule, call_type ORDER BY filter_rule, call_type",
    ):
        add(f"  {rule}  {RULES.get(rule, '?'):<26} {call_type:<9} {n:>6}")

    add(f"\nCharges ({PAYMENT_LOG}):")
    for status, n, fen in _rows(
        conn,
        f"SELECT status, COUNT(*), SUM(amount) FROM {PAYMENT_LOG} GROUP BY status ORDER BY status",
    ):
        add(f"  {status:<13} {n:>6}   {_yuan(fen) if status == 'success' else ''}")
    revenue = _rows(
        conn,
        f"SELECT COALESCE(SUM(amount), 0) FROM {PAYMENT_LOG} WHERE status = 'success'",
    )[0][0]
    ids = _rows(conn, f"SELECT MIN(id), MAX(id) FROM {PAYMENT_LOG}")[0]
    add(f"  revenue: {_yuan(revenue)}   order ids {ids[0]} .. {ids[1]}")
    retried = _rows(conn, f"SELECT COUNT(*) FROM {PAYMENT_LOG} WHERE attempts > 1")[0][0]
    add(f"  orders sent again with the same order id after a lost answer: {retried}")
    if "double_charges" in extra:
        add(f"  orders charged more than once at the payment center: {extra['double_charges']}")

    add("\nSublessors taken offline:")
    events = _rows(
        conn,
        f"SELECT sublessor_id, reason, status, offlined FROM {OFFLINE_EVENT} ORDER BY sublessor_id, id",
    )
    for sid, reason, status, offlined in events:
        add(
            f"  {sid}  {status:<8} listings offline: {offlined if offlined is not None else '-':<4} {reason}"
        )
    if not events:
        add("  none")

    if _table_exists(conn, CONTRACT):
        add(f"\nIncome recognised per contract ({INCOME}):")
        for no, sid, balance, income, status in _rows(
            conn,
            "SELECT c.contract_no, c.sublessor_id, c.balance,"
            " COALESCE(SUM(i.amount), 0), c.status"
            f" FROM {CONTRACT} c LEFT JOIN {INCOME} i"
            " ON i.contract_id = c.id GROUP BY c.id ORDER BY c.sublessor_id, c.contract_no",
        ):
            flag = "" if status == 1 else " (cancelled)"
            add(f"  {no:<16} {sid}  income {_yuan(income):>18}  balance {_yuan(balance):>18}{flag}")
        unallocated = _rows(
            conn,
            "SELECT COUNT(DISTINCT payment_id), COALESCE(SUM(amount), 0)"
            f" FROM {INCOME} WHERE contract_id IS NULL",
        )[0]
        add(
            f"  unallocated (no contract could take it): {unallocated[0]} payments, {_yuan(unallocated[1])}"
        )

    add(f"\nK3 Cloud exports ({K3_EXPORT_STATE}):")
    exports = _rows(
        conn,
        f"SELECT state, COUNT(*) FROM {K3_EXPORT_STATE} GROUP BY state ORDER BY state",
    )
    for state, n in exports:
        add(f"  {state:<10} {n}")
    if not exports:
        add("  none")
    if extra.get("k3_bills") is not None:
        add(f"  bills in K3: {extra['k3_bills']} for {extra.get('k3_contracts', '?')} contracts")

    if extra.get("runs"):
        add("\nDAG runs (airflow dags test):")
        for line in extra["runs"]:
            add(f"  {line}")
    add("=" * 72)
    conn.close()
    return "\n".join(out)
