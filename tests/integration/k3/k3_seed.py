"""Helpers of the K3 export tests: connection values, contract seeding, a task-instance XCom recorder."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any

from sublessor_billing.sandbox.k3_cloud import DEFAULT_ACCT_ID

K3_USER, K3_PASSWORD, K3_FORM = "api_user", "s3cret-K3-pw", "SUBL_Contract"
EDITED_AT = datetime(2026, 3, 1, 9, 30, 0)


def k3_connection(url: str, **overrides: Any) -> dict[str, Any]:
    conn = {
        "conn_type": "http",
        "host": url,
        "login": K3_USER,
        "password": K3_PASSWORD,
        "extra": {"acct_id": DEFAULT_ACCT_ID, "lcid": 2052, "form_id": K3_FORM},
    }
    conn.update(overrides)
    return conn


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
