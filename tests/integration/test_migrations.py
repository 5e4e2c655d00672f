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
