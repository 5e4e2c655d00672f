"""Set-based checks of the broker phone sync tests (source rows vs broker_phone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sublessor_billing.phone import normalize_phone


def put_brokers(conn, rows: list[tuple[int, str, datetime | str]]) -> None:
    """Insert or overwrite (BrokerId, UserMobile, updated_datetime) with the given local time."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ajk_brokerextend (BrokerId, UserMobile, updated_datetime) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE UserMobile = VALUES(UserMobile),"
            " updated_datetime = VALUES(updated_datetime)",
            rows,
        )
    conn.commit()


def source_phones(conn, *, updated_before: datetime | str | None = None) -> set[tuple[int, str]]:
    """The broker_phone content the source implies (optionally only rows changed before a time)."""
    with conn.cursor() as cur:
        if updated_before is None:
            cur.execute("SELECT BrokerId, UserMobile FROM ajk_brokerextend")
        else:
            cur.execute(
                "SELECT BrokerId, UserMobile FROM ajk_brokerextend WHERE updated_datetime < %s",
                (updated_before,),
            )
        rows = cur.fetchall()
    conn.rollback()
    return {(int(bid), normalize_phone(mobile)) for bid, mobile in rows if normalize_phone(mobile)}


def target_phones(conn) -> set[tuple[int, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT broker_id, phone FROM broker_phone")
        rows = cur.fetchall()
    conn.rollback()
    return {(int(bid), phone) for bid, phone in rows}


def job_cursor(conn, name: str = "broker_phone_sync") -> tuple | None:
    with conn.cursor() as cur:
        cur.execute("SELECT position_id, position_time FROM job_cursor WHERE name = %s", (name,))
        row = cur.fetchone()
    conn.rollback()
    return row


def brokers(ids, stamp="2025-06-01 08:00:00", mobile="1380000{:04d}"):
    """Rows of brokers ``ids``, each with its own mobile (or '' when ``mobile`` is empty)."""
    return [(i, mobile.format(i) if mobile else "", stamp) for i in ids]


def table_and_cursors(target) -> tuple:
    """Everything a sync writes: broker_phone rows (with their source time) and job_cursor."""
    with target.cursor() as cur:
        cur.execute("SELECT broker_id, phone, source_updated_datetime FROM broker_phone")
        rows = sorted(cur.fetchall())
        cur.execute("SELECT name, position_id, position_time FROM job_cursor ORDER BY name")
        cursors = cur.fetchall()
    target.rollback()
    return rows, cursors


def run_context(**values) -> dict:
    """The task context of one run, as the DAG's operator reads it (params, interval, dag_run, ti)."""
    return values


T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
INTERVAL = {"start": T0, "end": T0 + timedelta(minutes=5), "overlap_seconds": 900}
