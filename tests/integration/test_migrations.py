from __future__ import annotations

import pytest

from sublessor_billing.db.connect import connect
from sublessor_billing.db.migrate import apply_migrations, available_migrations, latest_version

pytestmark = pytest.mark.integration


def test_migrations_apply_once_and_are_idempotent(database_factory) -> None:
    conn = connect(database_factory("migrate"))
    applied = apply_migrations(conn)
    assert applied == [m.name for m in available_migrations()]
    assert apply_migrations(conn) == []
    with conn.cursor() as cur:
        cur.execute("SELECT MAX(version) FROM schema_version")
        assert cur.fetchone()[0] == latest_version()
        cur.execute("SHOW TABLES")
        tables = {row[0] for row in cur.fetchall()}
    assert {
        "broker_phone",
        "sublessor_call_log_201409",
        "sublessor_call_payment_log_201409",
        "sublessor_accounting_income_201409",
        "call400_quarantine",
        "job_cursor",
    } <= tables
    conn.close()


def test_statements_survive_a_rerun_after_a_partial_migration(database_factory) -> None:
    """DDL commits implicitly: a crash mid-migration must be repairable by re-running it."""
    conn = connect(database_factory("partial"))
    first = available_migrations()[0]
    with conn.cursor() as cur:
        for statement in first.statements()[:3]:
            cur.execute(statement)
    assert apply_migrations(conn)[0] == first.name
    conn.close()


def test_order_ids_start_at_the_assigned_range(user_prop_conn) -> None:
    with user_prop_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject)"
            " VALUES ('c-1', 1, 4000, 's')"
        )
        assert cur.lastrowid == 820000000000
    user_prop_conn.rollback()


def test_an_alter_already_applied_is_skipped_on_a_rerun(database_factory) -> None:
    """A crash between an ALTER and its schema_version row: the rerun skips what is done."""
    conn = connect(database_factory("rerun"))
    apply_migrations(conn)
    last = available_migrations()[-1]
    with conn.cursor() as cur:
        cur.execute("DELETE FROM schema_version WHERE version = %s", (last.version,))
    conn.commit()
    assert apply_migrations(conn) == [last.name]
    conn.close()


def test_a_failing_statement_names_the_migration(database_factory, monkeypatch) -> None:
    from sublessor_billing.db import migrate

    conn = connect(database_factory("broken"))
    broken = migrate.Migration(999, "999_broken", migrate.MIGRATIONS_DIR / "999_broken.sql")
    monkeypatch.setattr(migrate, "available_migrations", lambda: [broken])
    monkeypatch.setattr(
        migrate.Migration, "statements", lambda self: ["ALTER TABLE nope ADD x INT"]
    )
    with pytest.raises(RuntimeError, match="999_broken failed on: ALTER TABLE nope"):
        apply_migrations(conn)
    conn.close()


def test_call_ids_compare_exactly(user_prop_conn) -> None:
    """'C-1' and 'c-1' are two calls: the unique key must not fold case."""
    with user_prop_conn.cursor() as cur:
        for call_id in ("C-1", "c-1"):
            cur.execute(
                "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called,"
                " status, start_time, duration) VALUES (%s, 1, '1', '4', 1, NOW(), 60)",
                (call_id,),
            )
        cur.execute("SELECT COUNT(*) FROM sublessor_call_log_201409")
        assert cur.fetchone()[0] == 2
    user_prop_conn.rollback()


CALL_ID_TABLES = (
    "sublessor_call_log_201409",
    "sublessor_call_payment_log_201409",
    "call400_quarantine",
)


def _migrate_up_to(conn, version: int, monkeypatch) -> None:
    from sublessor_billing.db import migrate

    every = migrate.available_migrations()
    with monkeypatch.context() as patch:
        patch.setattr(
            migrate, "available_migrations", lambda: [m for m in every if m.version <= version]
        )
        apply_migrations(conn)


def _log_call(cur, call_id: str) -> None:
    cur.execute(
        "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called,"
        " status, start_time, duration, filter_rule) VALUES (%s, 1, '1', '4', 1, NOW(), 60, 1)",
        (call_id,),
    )
    cur.execute(
        "INSERT INTO call400_quarantine (body_sha256, raw_body, reason, call_id)"
        " VALUES (SHA2(%s, 256), '{}', 'r', %s)",
        (call_id, call_id),
    )


def _check_call_ids_are_exact(conn) -> None:
    """Trailing spaces and case count everywhere a call_id is stored or compared."""
    with conn.cursor() as cur:
        for call_id in ("c1 ", "C1", "c1  "):
            _log_call(cur, call_id)
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject)"
            " VALUES ('c1', 1, 4000, '400 call c1')"
        )
        # The allocation's NOT EXISTS: 'c1' has an order, 'c1 ' and the others have none.
        cur.execute(
            "SELECT c.call_id FROM sublessor_call_log_201409 c WHERE NOT EXISTS"
            " (SELECT 1 FROM sublessor_call_payment_log_201409 p WHERE p.call_id = c.call_id)"
        )
        assert sorted(_text(r[0]) for r in cur.fetchall()) == ["C1", "c1 ", "c1  "]
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject)"
            " VALUES ('c1 ', 1, 4000, '400 call c1 ')"
        )
        for table in CALL_ID_TABLES:
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE call_id = 'c1'")
            assert cur.fetchone()[0] == 1, table
    conn.rollback()


def _check_allocation_orders_each(conn) -> None:
    """The payments code on the migrated columns: 'c1' (logged before) and 'c1 ' get an order each."""
    from sublessor_billing.payments.store import allocate_orders

    with conn.cursor() as cur:
        _log_call(cur, "c1 ")
    conn.commit()
    assert allocate_orders(conn, 4000) == 2
    with conn.cursor() as cur:
        cur.execute("SELECT call_id, subject FROM sublessor_call_payment_log_201409 ORDER BY id")
        assert sorted((_text(c), s) for c, s in cur.fetchall()) == [
            ("c1", "400 call c1"),
            ("c1 ", "400 call c1 "),
        ]
    conn.rollback()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _call_id_types(conn) -> set[tuple[str, str, str | None]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, DATA_TYPE, COLLATION_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'call_id'"
        )
        return set(cur.fetchall())


def test_call_ids_differing_by_trailing_spaces_are_distinct_after_migrating(
    database_factory, monkeypatch
) -> None:
    """PAD SPACE (utf8mb4_bin) made 'c1 ' a duplicate of 'c1': never logged, never charged."""
    conn = connect(database_factory("nopad"))
    try:
        _nopad_case(conn, monkeypatch)
    finally:
        conn.close()


def _nopad_case(conn, monkeypatch) -> None:
    _migrate_up_to(conn, 50, monkeypatch)
    with conn.cursor() as cur:
        _log_call(cur, "c1")  # a call logged before the migration keeps its row
    conn.commit()
    apply_migrations(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT call_id FROM sublessor_call_log_201409")
        assert cur.fetchall() == (("c1",),)
        cur.execute(
            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS"
            " WHERE COLLATION_NAME IN ('utf8mb4_0900_bin', 'utf8mb4_nopad_bin')"
        )
        expected = cur.fetchone()[0]  # MariaDB 10.6+: utf8mb4_nopad_bin; MySQL 8: utf8mb4_0900_bin
    for _ in range(2):  # a rerun (crash before schema_version was written) changes nothing
        assert _call_id_types(conn) == {(table, "varchar", expected) for table in CALL_ID_TABLES}
        with conn.cursor() as cur:
            cur.execute("DELETE FROM schema_version WHERE version = 60")
        conn.commit()
        apply_migrations(conn)
    _check_call_ids_are_exact(conn)
    _check_allocation_orders_each(conn)


def test_call_ids_fall_back_to_varbinary_without_a_no_pad_collation(
    database_factory, monkeypatch
) -> None:
    """MySQL 5.7 has no NO PAD collation: simulated by asking for collations that do not exist."""
    from sublessor_billing.db import migrate

    real = migrate.Migration.statements

    def without_no_pad(self):
        return [
            s.replace("'utf8mb4_0900_bin'", "'no_such_a'").replace(
                "'utf8mb4_nopad_bin'", "'no_such_b'"
            )
            for s in real(self)
        ]

    monkeypatch.setattr(migrate.Migration, "statements", without_no_pad)
    conn = connect(database_factory("varbin"))
    try:
        _varbinary_case(conn, monkeypatch)
    finally:
        conn.close()


def _varbinary_case(conn, monkeypatch) -> None:
    _migrate_up_to(conn, 50, monkeypatch)
    with conn.cursor() as cur:
        _log_call(cur, "c1")
    conn.commit()
    for _ in range(2):  # a rerun (crash before schema_version was written) changes nothing
        with conn.cursor() as cur:
            cur.execute("DELETE FROM schema_version WHERE version = 60")
        conn.commit()
        apply_migrations(conn)
        assert _call_id_types(conn) == {(table, "varbinary", None) for table in CALL_ID_TABLES}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT IS_NULLABLE, COLUMN_COMMENT FROM information_schema.COLUMNS WHERE"
            " TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'call_id' ORDER BY TABLE_NAME"
        )
        assert [r[0] for r in cur.fetchall()] == ["YES", "NO", "NO"]
    _check_call_ids_are_exact(conn)
    _check_allocation_orders_each(conn)
