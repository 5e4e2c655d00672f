"""The sync works whatever the target database's default collation (real MariaDB)."""

from __future__ import annotations

import pytest
from broker_sync_db import brokers, put_brokers, source_phones, target_phones

from sublessor_billing.broker_sync import MassRemoval, full_resync
from sublessor_billing.db.connect import connect
from sublessor_billing.db.migrate import apply_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
def unicode_ci_target(database_factory):
    """A user_prop_db whose default collation is not broker_phone.phone's (utf8mb4_general_ci)."""
    target = database_factory("userprop")
    conn = connect(target)
    with conn.cursor() as cur:
        cur.execute(
            f"ALTER DATABASE `{target.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    apply_migrations(conn)
    yield conn
    conn.close()


def test_a_database_default_collation_other_than_the_tables_does_not_stop_the_sync(
    source, unicode_ci_target
) -> None:
    target = unicode_ci_target
    with target.cursor() as cur:
        cur.execute(
            "SELECT @@collation_database, COLLATION_NAME, COLUMN_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'broker_phone'"
            " AND COLUMN_NAME = 'phone'"
        )
        database_default, column, column_type = cur.fetchone()
    target.rollback()
    assert database_default == "utf8mb4_unicode_ci" != column
    assert column_type == "varchar(63)"  # migration 095 kept the table's collation

    put_brokers(source, brokers(range(1, 11)))
    assert full_resync(source, target).added == 10
    put_brokers(source, brokers([1], "2026-03-01 09:00:00", mobile=""))
    put_brokers(source, brokers([2], "2026-03-01 09:00:00", mobile="1390000{:04d}"))
    report = full_resync(source, target)
    assert (report.removed, report.changed, report.numbers_removed) == (1, 1, 2)
    assert target_phones(target) == source_phones(source)
    put_brokers(source, brokers([3, 4, 5], "2026-03-01 09:10:00", mobile="1370000{:04d}"))
    with pytest.raises(MassRemoval, match="would remove 3 numbers"):
        full_resync(source, target)
