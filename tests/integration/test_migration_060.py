"""Migration 060: held-call columns and exact call ids, on every kind of server it may meet.

The development server is MariaDB 10.11. Other servers are simulated by
rewriting the collation names the migration asks for: ``utf8mb4_bin`` (PAD
SPACE) stands in for the ``utf8mb4_0900_bin`` alias of MariaDB 11.4.5+, and a
name that does not exist for a collation the server lacks (MySQL 5.7).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sublessor_billing.db import migrate
from sublessor_billing.db.connect import connect
from sublessor_billing.db.migrate import apply_migrations

pytestmark = pytest.mark.integration

CALL_ID_TABLES = (
    "sublessor_call_log_201409",
    "sublessor_call_payment_log_201409",
    "call400_quarantine",
)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "intake.md"
LARGE = 100_001  # rows: above 060's threshold for LOCK=NONE


def rewrite_collations(monkeypatch, **names: str) -> None:
    """Make 060 ask for other collation names (old name -> stand-in)."""
    real = migrate.Migration.statements

    def rewritten(self):
        statements = real(self)
        for old, new in names.items():
            statements = [s.replace(f"'{old}'", f"'{new}'") for s in statements]
        return statements

    monkeypatch.setattr(migrate.Migration, "statements", rewritten)


def migrate_up_to(conn, version: int, monkeypatch) -> None:
    every = migrate.available_migrations()
    with monkeypatch.context() as patch:
        patch.setattr(
            migrate, "available_migrations", lambda: [m for m in every if m.version <= version]
        )
        apply_migrations(conn)


def log_call(cur, call_id: str) -> None:
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


def log_many(conn, rows: int) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called,"
            " status, start_time, duration) SELECT CONCAT('bulk-', seq), 1, '1', '4', 1,"
            f" '2026-03-01 10:00:00', 60 FROM seq_1_to_{rows:d}"
        )
    conn.commit()


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def check_call_ids_are_exact(conn) -> None:
    """'c1' (logged before) and 'c1 ', 'C1', 'c1  ' are distinct in all three tables."""
    with conn.cursor() as cur:
        for call_id in ("c1 ", "C1", "c1  "):
            log_call(cur, call_id)
        for call_id in ("c1", "c1 "):
            cur.execute(
                "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount,"
                " subject) VALUES (%s, 1, 4000, CONCAT('400 call ', %s))",
                (call_id, call_id),
            )
        for table in CALL_ID_TABLES:
            cur.execute(f"SELECT call_id FROM {table} WHERE call_id = 'c1 '")
            assert [text(r[0]) for r in cur.fetchall()] == ["c1 "], table
        cur.execute(
            "SELECT c.call_id FROM sublessor_call_log_201409 c WHERE NOT EXISTS"
            " (SELECT 1 FROM sublessor_call_payment_log_201409 p WHERE p.call_id = c.call_id)"
            " AND c.call_id NOT LIKE 'bulk-%%'"
        )
        assert sorted(text(r[0]) for r in cur.fetchall()) == ["C1", "c1  "]
    conn.rollback()


def check_allocation_orders_each(conn) -> None:
    """The payments code on the migrated columns: 'c1' (logged before) and 'c1 ' get an order each."""
    from sublessor_billing.payments.allocation import allocate_orders

    with conn.cursor() as cur:
        log_call(cur, "c1 ")
    conn.commit()
    assert allocate_orders(conn, 4000).allocated == 2
    with conn.cursor() as cur:
        cur.execute("SELECT call_id, subject FROM sublessor_call_payment_log_201409 ORDER BY id")
        assert sorted((text(c), s) for c, s in cur.fetchall()) == [
            ("c1", "400 call c1"),
            ("c1 ", "400 call c1 "),
        ]
    conn.rollback()


def call_id_types(conn) -> set[tuple[str, str, str | None]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, DATA_TYPE, COLLATION_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'call_id'"
        )
        return set(cur.fetchall())


def held_columns(conn) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_NAME = 'sublessor_call_log_201409' AND COLUMN_NAME LIKE 'held%%'"
        )
        return {r[0] for r in cur.fetchall()}


def recorded(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM schema_version WHERE version = 60")
        found = cur.fetchone()[0] == 1
    conn.rollback()
    return found


def forget_060(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM schema_version WHERE version = 60")
    conn.commit()


def server_no_pad_collation(conn) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    return "utf8mb4_nopad_bin" if "MariaDB" in version else "utf8mb4_0900_bin"


@pytest.fixture
def target_050(database_factory):
    return database_factory("m060")


@pytest.fixture
def at_050(target_050, monkeypatch):
    """A database migrated up to 050 holding call 'c1', as production is before 060."""
    conn = connect(target_050)
    migrate_up_to(conn, 50, monkeypatch)
    with conn.cursor() as cur:
        log_call(cur, "c1")
    conn.commit()
    yield conn
    conn.close()


def test_call_ids_are_exact_after_migrating_and_a_rerun_changes_nothing(at_050) -> None:
    """PAD SPACE (utf8mb4_bin) made 'c1 ' a duplicate of 'c1': never logged, never charged."""
    expected = server_no_pad_collation(at_050)  # by server kind, not by the migration's lookup
    for _ in range(2):  # a rerun (crash before schema_version was written) changes nothing
        apply_migrations(at_050)
        assert call_id_types(at_050) == {(t, "varchar", expected) for t in CALL_ID_TABLES}
        assert held_columns(at_050) == {"held_reason", "held_count"}
        forget_060(at_050)
    with at_050.cursor() as cur:
        cur.execute("SELECT call_id FROM sublessor_call_log_201409")
        assert cur.fetchall() == (("c1",),)
    at_050.rollback()
    check_call_ids_are_exact(at_050)
    check_allocation_orders_each(at_050)


def test_a_utf8mb4_0900_bin_that_pads_is_not_chosen(at_050, monkeypatch) -> None:
    """MariaDB 11.4.5+: utf8mb4_0900_bin is an alias of the PAD SPACE utf8mb4_bin."""
    rewrite_collations(monkeypatch, utf8mb4_0900_bin="utf8mb4_bin")
    apply_migrations(at_050)
    assert call_id_types(at_050) == {(t, "varchar", "utf8mb4_nopad_bin") for t in CALL_ID_TABLES}
    check_call_ids_are_exact(at_050)


def test_only_a_padding_utf8mb4_0900_bin_falls_back_to_varbinary(at_050, monkeypatch) -> None:
    """A server listing a padding utf8mb4_0900_bin and no utf8mb4_nopad_bin gets VARBINARY."""
    rewrite_collations(
        monkeypatch, utf8mb4_0900_bin="utf8mb4_bin", utf8mb4_nopad_bin="no_such_collation"
    )
    apply_migrations(at_050)
    assert call_id_types(at_050) == {(t, "varbinary", None) for t in CALL_ID_TABLES}
    check_call_ids_are_exact(at_050)


def test_without_a_no_pad_collation_call_ids_become_varbinary(at_050, monkeypatch) -> None:
    """MySQL 5.7 has neither collation."""
    rewrite_collations(monkeypatch, utf8mb4_0900_bin="no_such_a", utf8mb4_nopad_bin="no_such_b")
    for _ in range(2):
        apply_migrations(at_050)
        assert call_id_types(at_050) == {(t, "varbinary", None) for t in CALL_ID_TABLES}
        forget_060(at_050)
    with at_050.cursor() as cur:
        cur.execute(
            "SELECT IS_NULLABLE FROM information_schema.COLUMNS WHERE"
            " TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'call_id' ORDER BY TABLE_NAME"
        )
        assert [r[0] for r in cur.fetchall()] == ["YES", "NO", "NO"]
    at_050.rollback()
    check_call_ids_are_exact(at_050)
    check_allocation_orders_each(at_050)


def test_the_migration_stops_when_a_column_still_pads(at_050, monkeypatch) -> None:
    """The check after the ALTERs: a collation that pads after all is caught, 060 not recorded."""
    real = migrate.Migration.statements

    def forced(self):  # as if the probe had been fooled into choosing a padding collation
        statements = real(self)
        at = next(i for i, s in enumerate(statements) if s.startswith("SET @call_id_64"))
        return [*statements[:at], "SET @call_id_collation = 'utf8mb4_bin'", *statements[at:]]

    monkeypatch.setattr(migrate.Migration, "statements", forced)
    with pytest.raises(migrate.MigrationCheckFailed) as failed:
        apply_migrations(at_050)
    message = str(failed.value)
    assert "060_call_log_held_and_exact_call_ids stopped" in message
    for table in CALL_ID_TABLES:
        assert f"{table}.call_id still takes 'c1', 'c1 ' or 'C1' for the same call id" in message
    assert "collation chosen: utf8mb4_bin" in message
    assert not recorded(at_050)


def test_call_ids_a_narrower_column_would_cut_stop_the_migration(at_050) -> None:
    """An older, wider call_id column: under a relaxed sql_mode the MODIFY would truncate."""
    long_id = "L" * 70
    with at_050.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(
            "ALTER TABLE sublessor_call_log_201409 MODIFY call_id"
            " VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
        )
        log_call(cur, long_id)
    at_050.commit()
    with pytest.raises(
        migrate.MigrationCheckFailed,
        match=("1 call_id values of sublessor_call_log_201409 are longer than 64 characters"),
    ):
        apply_migrations(at_050)
    assert not recorded(at_050)
    assert held_columns(at_050) == set()  # nothing was altered
    with at_050.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE call_id = %s", (long_id,))
        assert cur.fetchone()[0] == 1
    at_050.rollback()


def test_a_large_table_is_altered_online_on_mariadb(at_050) -> None:
    log_many(at_050, LARGE)
    apply_migrations(at_050)
    with at_050.cursor() as cur:
        cur.execute("SELECT @log_ddl, @payment_ddl")
        log_ddl, payment_ddl = cur.fetchone()
    assert log_ddl.endswith(", LOCK=NONE") and "held_reason" in log_ddl
    assert "LOCK=NONE" not in payment_ddl  # a small table: the server chooses
    assert recorded(at_050)
    check_call_ids_are_exact(at_050)


def out_of_band_alters(server: str) -> list[tuple[str, str]]:
    """(table, ALTER text) of the pt-online-schema-change commands in docs/intake.md."""
    commands = re.findall(r'D=user_prop_db,t=(\w+) --alter "([^"]+)"', DOCS.read_text())
    marker = "VARBINARY" if server == "5.7" else "utf8mb4_0900_bin"
    chosen = [(table, alter) for table, alter in commands if marker in alter]
    assert [table for table, _ in chosen] == list(CALL_ID_TABLES)
    return chosen


def hold_tables(blocker) -> None:
    """An open transaction that has read the call tables: an ALTER of them must wait for it."""
    with blocker.cursor() as cur:
        for table in CALL_ID_TABLES:
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            cur.fetchall()


@contextmanager
def watchdog(target, conn, seconds: int) -> Iterator[None]:
    """Interrupt ``conn``'s statement after ``seconds``: a migration that would wait a year fails."""

    def interrupt() -> None:
        killer = connect(target)
        try:
            with killer.cursor() as cur:
                cur.execute(f"KILL QUERY {conn.thread_id():d}")
        finally:
            killer.close()

    timer = threading.Timer(seconds, interrupt)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def test_a_large_table_on_mysql_57_waits_for_060_out_of_band_then_it_is_recorded(
    at_050, target_050, monkeypatch
) -> None:
    """MySQL cannot change the column without a copy: LOCK=NONE refused, nothing locked.

    MariaDB refuses LOCK=NONE for VARCHAR -> VARBINARY as MySQL does for 060's change.
    """
    assert len(out_of_band_alters("8.0")) == 3  # the MySQL 8 commands are documented too
    rewrite_collations(monkeypatch, utf8mb4_0900_bin="no_such_a", utf8mb4_nopad_bin="no_such_b")
    log_many(at_050, LARGE)
    with pytest.raises(RuntimeError, match="cannot make the change without copying a large table"):
        apply_migrations(at_050)
    assert not recorded(at_050)
    assert held_columns(at_050) == set()
    assert ("sublessor_call_log_201409", "varchar", "utf8mb4_bin") in call_id_types(at_050)

    with at_050.cursor() as cur:  # the operator applies 060 out of band, as documented
        for table, alter in out_of_band_alters("5.7"):
            cur.execute(f"ALTER TABLE {table} {alter}")
    blocker = connect(target_050)
    try:
        hold_tables(blocker)  # an ALTER now would wait: the runner must issue none
        monkeypatch.setattr(migrate, "MIGRATION_LOCK_WAIT_S", 2, raising=False)
        with watchdog(target_050, at_050, 30):
            # Later migrations alter the tables again; only 060 is under test here.
            every = migrate.available_migrations()
            monkeypatch.setattr(
                migrate, "available_migrations", lambda: [m for m in every if m.version <= 60]
            )
            assert "060_call_log_held_and_exact_call_ids" in apply_migrations(at_050)
    finally:
        blocker.close()
    assert recorded(at_050)
    assert call_id_types(at_050) == {(t, "varbinary", None) for t in CALL_ID_TABLES}
    assert held_columns(at_050) == {"held_reason", "held_count"}
    check_call_ids_are_exact(at_050)


def test_a_table_in_use_fails_the_migration_after_a_short_lock_wait(
    at_050, target_050, monkeypatch
) -> None:
    """The server waits a year for a metadata lock by default: intake and charge would queue."""
    with at_050.cursor() as cur:
        cur.execute("SELECT @@SESSION.lock_wait_timeout")
        before = cur.fetchone()[0]
    monkeypatch.setattr(migrate, "MIGRATION_LOCK_WAIT_S", 1, raising=False)
    blocker = connect(target_050)
    try:
        hold_tables(blocker)
        with watchdog(target_050, at_050, 30), pytest.raises(RuntimeError) as failed:
            apply_migrations(at_050)
        assert "waited 1 s for a table" in str(failed.value)
    finally:
        blocker.close()
    assert not recorded(at_050)
    with at_050.cursor() as cur:
        cur.execute("SELECT @@SESSION.lock_wait_timeout")
        assert cur.fetchone()[0] == before  # the task's own session is left as it was
    assert "060_call_log_held_and_exact_call_ids" in apply_migrations(at_050)
