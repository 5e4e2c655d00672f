"""Seed calls, payments and contracts straight into a fresh user_prop_db."""

from __future__ import annotations

import itertools
from datetime import date, datetime

import pytest

from sublessor_billing.db.connect import connect

CRM_EDITED_AT = datetime(2014, 8, 1, 10, 0, 0)  # updated_datetime every seeded contract starts with


class Seed:
    crm_edited_at = CRM_EDITED_AT

    def __init__(self, conn) -> None:
        self.conn = conn
        self._calls = itertools.count(1)

    def payment(
        self,
        sublessor_id: int,
        amount: int = 4000,
        *,
        status: str = "success",
        day: date = date(2014, 9, 15),
    ) -> int:
        """A call on ``day`` and its payment; returns the payment (order) id."""
        call_id = f"call-{next(self._calls)}"
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
                " start_time, duration, filter_rule) VALUES (%s, %s, '13800138000', '4008', 1, %s, 60, 1)",
                (
                    call_id,
                    sublessor_id,
                    datetime.combine(day, datetime.min.time()).replace(hour=23, minute=59),
                ),
            )
            cur.execute(
                "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject, status)"
                " VALUES (%s, %s, %s, 'call', %s)",
                (call_id, sublessor_id, amount, status),
            )
            payment_id = cur.lastrowid
        self.conn.commit()
        return payment_id

    def contract(
        self, sublessor_id: int, balance: int, start: date, end: date, *, status: int = 1
    ) -> int:
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO sublessor_contract (sublessor_id, contract_no, total_amount, balance,"
                " start_date, end_date, status, signed_at, updated_datetime)"
                " VALUES (%s, UUID_SHORT(), %s, %s, %s, %s, %s, %s, %s)",
                (sublessor_id, balance, balance, start, end, status, CRM_EDITED_AT, CRM_EDITED_AT),
            )
            contract_id = cur.lastrowid
        self.conn.commit()
        return contract_id

    def payments(
        self, rows: list[tuple[int, int, str]], *, day: date = date(2014, 9, 15)
    ) -> list[int]:
        """Many (sublessor_id, amount, status) payments and their calls at once; their ids."""
        start = datetime.combine(day, datetime.min.time()).replace(hour=23, minute=59)
        call_ids = [f"call-{next(self._calls)}" for _ in rows]
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called,"
                " status, start_time, duration, filter_rule)"
                " VALUES (%s, %s, '13800138000', '4008', 1, %s, 60, 1)",
                [(c, s, start) for c, (s, _, _) in zip(call_ids, rows, strict=True)],
            )
            cur.executemany(
                "INSERT INTO sublessor_call_payment_log_201409"
                " (call_id, sublessor_id, amount, subject, status) VALUES (%s, %s, %s, 'call', %s)",
                [(c, s, a, st) for c, (s, a, st) in zip(call_ids, rows, strict=True)],
            )
            cur.execute(
                "SELECT id FROM sublessor_call_payment_log_201409 WHERE call_id IN ("
                + ", ".join(["%s"] * len(call_ids))
                + ") ORDER BY id",
                call_ids,
            )
            ids = [r[0] for r in cur.fetchall()]
        self.conn.commit()
        return ids

    def set_status(self, payment_id: int, status: str) -> None:
        self.execute(
            "UPDATE sublessor_call_payment_log_201409 SET status = %s WHERE id = %s",
            (status, payment_id),
        )

    def execute(self, sql: str, params: tuple = ()) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
        self.conn.commit()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        self.conn.rollback()  # a fresh view of what others committed
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def income(self) -> list[tuple]:
        """(payment_id, contract_id, amount) in id order."""
        return self.query(
            "SELECT payment_id, contract_id, amount FROM sublessor_accounting_income_201409 ORDER BY id"
        )

    def balances(self) -> dict[int, int]:
        return dict(self.query("SELECT id, balance FROM sublessor_contract"))

    def cursor(self) -> int | None:
        rows = self.query("SELECT position_id FROM job_cursor WHERE name = 'accounting_income'")
        return rows[0][0] if rows else None

    def watched(self) -> list[int]:
        return [
            r[0]
            for r in self.query("SELECT payment_id FROM accounting_unsettled_payment ORDER BY 1")
        ]

    def snapshot(self) -> tuple:
        return (
            self.query("SELECT * FROM sublessor_accounting_income_201409 ORDER BY id"),
            self.query("SELECT * FROM sublessor_contract ORDER BY id"),
            self.watched(),
            self.cursor(),
        )


@pytest.fixture
def seed(user_prop_conn):
    return Seed(user_prop_conn)


@pytest.fixture
def accounting_conn(user_prop_target):
    """A second connection, the one the code under test uses."""
    conn = connect(user_prop_target)
    yield conn
    conn.close()
