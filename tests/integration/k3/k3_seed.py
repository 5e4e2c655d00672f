"""Contract seeding and a task-instance XCom recorder for the K3 export tests."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any

EDITED_AT = datetime(2026, 3, 1, 9, 30, 0)


class Contracts:
    """Insert and edit CRM contracts; read the export state."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self._numbers = itertools.count(1)

    def add(
        self,
        *,
        sublessor_id: int = 7,
        total_amount: int = 1_234_56,
        status: int = 1,
        contract_no: str | None = None,
    ) -> dict:
        contract_no = contract_no or f"HT-2026-{next(self._numbers):04d}"
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO sublessor_contract (sublessor_id, contract_no, total_amount, balance,"
                " start_date, end_date, status, signed_at, updated_datetime)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    sublessor_id,
                    contract_no,
                    total_amount,
                    total_amount,
                    date(2026, 3, 1),
                    date(2027, 2, 28),
                    status,
                    datetime(2026, 2, 27, 15, 4, 5),
                    EDITED_AT,
                ),
            )
            contract_id = cur.lastrowid
        self.conn.commit()
        return {"id": contract_id, "contract_no": contract_no}

    def execute(self, sql: str, params: tuple = ()) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
        self.conn.commit()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of ``sql``, read in a fresh transaction (what others committed)."""
        self.conn.rollback()
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            rows = list(cur.fetchall())
        self.conn.commit()
        return rows

    def rename(self, contract_id: int, contract_no: str) -> None:
        """What CRM does when a contract's number is corrected: an edit (a later updated_datetime)."""
        self.execute(
            "UPDATE sublessor_contract SET contract_no = %s,"
            " updated_datetime = updated_datetime + INTERVAL 1 HOUR WHERE id = %s",
            (contract_no, contract_id),
        )

    def state(self, contract_id: int) -> dict | None:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT state, contract_no, k3_id, k3_number, exported_version, last_error, attempts"
                " FROM k3_contract_export_state WHERE contract_id = %s",
                (contract_id,),
            )
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        self.conn.commit()
        return dict(zip(names, row, strict=True)) if row else None


class TaskInstanceXCom:
    """The one part of the task context the operator uses: ``ti.xcom_push``."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value
