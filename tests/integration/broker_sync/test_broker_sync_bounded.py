"""The guard decides before deleting, and no statement grows with the table (real MariaDB).

A refused sync deletes no row; an accepted one deletes in chunks; every
broker_phone range is read in chunks; an empty source is refused before a
page is read. Statements are recorded through a wrapper of the connections.
"""

from __future__ import annotations

import broker_sync_db
import pytest
from broker_sync_db import brokers, put_brokers, source_phones, table_and_cursors, target_phones

from sublessor_billing.broker_sync import Allowance, MassRemoval, full_resync, sync_interval

pytestmark = pytest.mark.integration

PAGE = 10


class Recording:
    """A connection that records (statement, rows returned or changed, size in bytes)."""

    def __init__(self, conn) -> None:
        self.conn, self.statements = conn, []

    def cursor(self):
        return _Cursor(self, self.conn.cursor())

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def deletes(self) -> list[tuple[str, int, int]]:
        return [s for s in self.statements if s[0].startswith("DELETE FROM broker_phone ")]

    def reads(self) -> list[tuple[str, int, int]]:
        return [
            s for s in self.statements if "FROM broker_phone WHERE" in s[0] and "FOR UPDATE" in s[0]
        ]


class _Cursor:
    def __init__(self, owner: Recording, cur) -> None:
        self.owner, self.cur = owner, cur

    def execute(self, sql, args=None):
        size = len(self.cur.mogrify(sql, args))
        result = self.cur.execute(sql, args)
        self.owner.statements.append((" ".join(sql.split()), int(self.cur.rowcount), size))
        return result

    def executemany(self, sql, args):
        result = self.cur.executemany(sql, args)
        self.owner.statements.append((" ".join(sql.split()), int(self.cur.rowcount), 0))
        return result

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cur.close()

    def __getattr__(self, name):
        return getattr(self.cur, name)


@pytest.fixture
def three_hundred(source, target):
    put_brokers(source, brokers(range(1, 301)))
    full_resync(source, target, page_size=1000)
    assert len(target_phones(target)) == 300


def test_a_refused_full_resync_deletes_nothing_and_reads_the_table_in_chunks(
    source, target, three_hundred
) -> None:
    """The source lost its last 100 brokers (33 %): no delete, no read of more than a page."""
    with source.cursor() as cur:
        cur.execute("DELETE FROM ajk_brokerextend WHERE BrokerId > 200")
    source.commit()
    before = table_and_cursors(target)
    recorded = Recording(target)
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, recorded, page_size=PAGE)
    assert (failure.value.would_remove, failure.value.total) == (100, 300)
    assert "100 removed brokers" in str(failure.value)
    assert recorded.deletes() == []  # decided before deleting anything
    assert max(rows for _, rows, _ in recorded.reads()) <= PAGE
    assert table_and_cursors(target) == before

    # Allowed: the same sync deletes the 100 rows, at most a page of ids a statement.
    recorded = Recording(target)
    report = full_resync(source, recorded, page_size=PAGE, allowance=Allowance("manual__b", 100))
    assert (report.removed, report.numbers_removed) == (100, 100)
    assert [rows for _, rows, _ in recorded.deletes()] == [PAGE] * 10
    assert max(rows for _, rows, _ in recorded.reads()) <= PAGE
    assert target_phones(target) == source_phones(source)


def test_a_refused_interval_deletes_nothing(source, target, three_hundred) -> None:
    put_brokers(source, brokers(range(1, 201), "2026-03-01 10:01:00", mobile=""))
    before = table_and_cursors(target)
    recorded = Recording(target)
    with pytest.raises(MassRemoval, match="would remove 200 numbers"):
        sync_interval(source, recorded, **broker_sync_db.INTERVAL, page_size=PAGE)
    assert recorded.deletes() == []
    assert max(size for _, _, size in recorded.statements) < 2048
    assert table_and_cursors(target) == before


def test_a_row_read_twice_in_a_window_is_kept_when_the_later_read_has_a_mobile(
    source, target, three_hundred
) -> None:
    """Broker 5 emptied, then given a mobile again while the window is read: it stays."""

    class Changing:
        def __init__(self, conn) -> None:
            self.conn, self.reads = conn, 0

        def cursor(self):
            self.reads += 1
            if self.reads == 2:  # after the first page (brokers 5 and 6) was read
                put_brokers(self.conn, [(5, "13800000005", "2026-03-01 10:03:00")])
            return self.conn.cursor()

        def __getattr__(self, name):
            return getattr(self.conn, name)

    put_brokers(source, brokers([5], "2026-03-01 10:01:00", mobile=""))
    put_brokers(source, brokers([6, 7], "2026-03-01 10:02:00"))
    report = sync_interval(Changing(source), target, **broker_sync_db.INTERVAL, page_size=2)
    assert (report.read, report.removed, report.numbers_removed) == (4, 0, 0)
    assert target_phones(target) == source_phones(source)


def test_an_empty_source_is_refused_before_a_page_is_read(source, target, three_hundred) -> None:
    with source.cursor() as cur:
        cur.execute("DELETE FROM ajk_brokerextend")
    source.commit()
    before = table_and_cursors(target)
    recorded_source, recorded_target = Recording(source), Recording(target)
    with pytest.raises(MassRemoval) as failure:
        full_resync(recorded_source, recorded_target, page_size=PAGE)
    message = str(failure.value)
    assert "refused before reading a page: it would remove 300 numbers" in message
    assert "only 0 rows with a mobile" in message
    assert not [s for s in recorded_source.statements if "BrokerId >" in s[0]]
    assert recorded_target.reads() == [] and recorded_target.deletes() == []
    assert table_and_cursors(target) == before


def test_a_source_with_far_fewer_mobiles_is_refused_early_with_a_lower_bound(
    source, target, three_hundred
) -> None:
    """A wrong schema with a few brokers: at least 290 of 300 numbers would go."""
    put_brokers(source, brokers(range(11, 301), "2026-03-01 09:00:00", mobile=""))
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target, page_size=PAGE)
    message = str(failure.value)
    assert "would remove at least 290 numbers" in message
    assert '{"allow_removals_up_to": 290}' in message and "at least this many" in message
    assert (failure.value.would_remove, failure.value.total) == (290, 300)
