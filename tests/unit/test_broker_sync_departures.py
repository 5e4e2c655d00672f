"""The removal guard's temporary tables: created outside a transaction; a missing privilege says what to grant."""

from __future__ import annotations

import pytest

from sublessor_billing.broker_sync.departures import create_tables, drop_tables


class Connection:
    """Records each statement with the autocommit mode it ran in."""

    def __init__(self, denied: bool = False) -> None:
        self.denied, self.on, self.ran = denied, False, []

    def autocommit(self, on: bool) -> None:
        self.on = on

    def rollback(self) -> None:
        self.ran.append(("ROLLBACK", self.on))

    def cursor(self):
        return Cursor(self)


class Cursor:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def execute(self, sql, args=None) -> None:
        if self.conn.denied and sql.startswith("CREATE TEMPORARY TABLE"):
            raise RuntimeError(1044, "Access denied for user 'billing'@'%' to database 'user_prop'")
        self.conn.ran.append((sql.split(" (")[0], self.conn.on))


def test_temporary_tables_are_created_and_dropped_with_autocommit_on() -> None:
    """MySQL 5.7 with enforce_gtid_consistency refuses them inside a transaction (error 1787)."""
    conn = Connection()
    create_tables(conn)
    drop_tables(conn)
    ddl = [(sql, on) for sql, on in conn.ran if "TEMPORARY" in sql]
    assert len(ddl) == 3 and all(on for _, on in ddl)
    assert conn.ran[0] == ("ROLLBACK", False) and conn.on is False  # back to one transaction


def test_an_account_without_create_temporary_tables_is_told_what_to_grant() -> None:
    conn = Connection(denied=True)
    with pytest.raises(PermissionError) as failure:
        create_tables(conn)
    message = str(failure.value)
    assert "CREATE TEMPORARY TABLES" in message and "GRANT" in message
    assert "Access denied" in message and conn.on is False
