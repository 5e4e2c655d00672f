"""The demo's closing report: what happened to a day of calls, in words and numbers."""

from __future__ import annotations

from typing import Any

from sublessor_billing.db.connect import MySqlTarget, connect

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
    logged = _rows(conn, "SELECT COUNT(*) FROM sublessor_call_log_201409")[0][0]
    quarantined = _rows(
        conn, "SELECT COUNT(*), COALESCE(SUM(seen_count), 0) FROM call400_quarantine"
    )[0]
    add(f"\nMessages published by the 400 platform: {published}")
    add(f"  calls logged (one row per call_id):   {logged}")
    add(f"  duplicates absorbed:                  {published - logged - int(quarantined[1])}")
    add(f"  quarantined (invalid):                {quarantined[0]}")
    for reason, n in _rows(
        conn, "SELECT reason, COUNT(*) FROM call400_quarantine GROUP BY reason ORDER BY 2 DESC, 1"
    ):
        add(f"      {n:>3} x {reason[:64]}")

    add("\nCalls per filter_rule:")
    for rule, call_type, n in _rows(
        conn,
        "SELECT filter_rule, call_type, COUNT(*) FROM sublessor_call_log_201409"
        " GROUP BY filter_rule, call_type ORDER BY filter_rule, call_type",
    ):
        add(f"  {rule}  {RULES.get(rule, '?'):<26} {call_type:<9} {n:>6}")

    add("\nCharges (sublessor_call_payment_log_201409):")
    for status, n, fen in _rows(
        conn,
        "SELECT status, COUNT(*), SUM(amount) FROM sublessor_call_payment_log_201409"
        " GROUP BY status ORDER BY status",
    ):
        add(f"  {status:<13} {n:>6}   {_yuan(fen) if status == 'success' else ''}")
    revenue = _rows(
        conn,
        "SELECT COALESCE(SUM(amount), 0) FROM sublessor_call_payment_log_201409 WHERE status = 'success'",
    )[0][0]
    ids = _rows(conn, "SELECT MIN(id), MAX(id) FROM sublessor_call_payment_log_201409")[0]
    add(f"  revenue: {_yuan(revenue)}   order ids {ids[0]} .. {ids[1]}")
    retried = _rows(
        conn, "SELECT COUNT(*) FROM sublessor_call_payment_log_201409 WHERE attempts > 1"
    )[0][0]
    add(f"  orders sent again with the same order id after a lost answer: {retried}")
    if "double_charges" in extra:
        add(f"  orders charged more than once at the payment center: {extra['double_charges']}")

    add("\nSublessors taken offline:")
    events = _rows(
        conn,
        "SELECT sublessor_id, reason, status, offlined FROM sublessor_offline_event ORDER BY sublessor_id, id",
    )
    for sid, reason, status, offlined in events:
        add(
            f"  {sid}  {status:<8} listings offline: {offlined if offlined is not None else '-':<4} {reason}"
        )
    if not events:
        add("  none")

    if _table_exists(conn, "sublessor_contract"):
        add("\nIncome recognised per contract (sublessor_accounting_income_201409):")
        for no, sid, balance, income, status in _rows(
            conn,
            "SELECT c.contract_no, c.sublessor_id, c.balance,"
            " COALESCE(SUM(i.amount), 0), c.status"
            " FROM sublessor_contract c LEFT JOIN sublessor_accounting_income_201409 i"
            " ON i.contract_id = c.id GROUP BY c.id ORDER BY c.sublessor_id, c.contract_no",
        ):
            flag = "" if status == 1 else " (cancelled)"
            add(f"  {no:<16} {sid}  income {_yuan(income):>18}  balance {_yuan(balance):>18}{flag}")
        unallocated = _rows(
            conn,
            "SELECT COUNT(DISTINCT payment_id), COALESCE(SUM(amount), 0)"
            " FROM sublessor_accounting_income_201409 WHERE contract_id IS NULL",
        )[0]
        add(
            f"  unallocated (no contract could take it): {unallocated[0]} payments, {_yuan(unallocated[1])}"
        )

    add("\nK3 Cloud exports (k3_contract_export_state):")
    exports = _rows(
        conn,
        "SELECT state, COUNT(*) FROM k3_contract_export_state GROUP BY state ORDER BY state",
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
