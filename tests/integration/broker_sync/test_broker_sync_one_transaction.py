"""A sync commits its rows, its cursor and the guard's decision together, or nothing (real MariaDB)."""

from __future__ import annotations

import broker_sync_db
import pytest
from broker_sync_db import brokers, put_brokers, source_phones, table_and_cursors, target_phones

from sublessor_billing.broker_sync import MassRemoval, full_resync, sync_interval

pytestmark = pytest.mark.integration


class FailingTarget:
    """The target connection, losing itself on its ``fail_at``-th write to broker_phone."""

    def __init__(self, conn, fail_at: int) -> None:
        self.conn, self.fail_at, self.writes = conn, fail_at, 0

    def cursor(self):
        return _Cursor(self, self.conn.cursor())

    def __getattr__(self, name):
        return getattr(self.conn, name)


class _Cursor:
    def __init__(self, owner: FailingTarget, cur) -> None:
        self.owner, self.cur = owner, cur

    def _count(self, sql: str) -> None:
        if (
            sql.lstrip()
            .upper()
            .startswith(("INSERT INTO BROKER_PHONE ", "DELETE FROM BROKER_PHONE "))
        ):
            self.owner.writes += 1
            if self.owner.writes == self.owner.fail_at:
                raise ConnectionError("target lost")

    def execute(self, sql, args=None):
        self._count(sql)
        return self.cur.execute(sql, args)

    def executemany(self, sql, args):
        self._count(sql)
        return self.cur.executemany(sql, args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cur.close()

    def __getattr__(self, name):
        return getattr(self.cur, name)


def test_a_full_resync_failing_mid_run_commits_no_page(source, target, ten_brokers) -> None:
    before = table_and_cursors(target)
    put_brokers(
        source,
        [(1, "13900000001", "2026-03-01 09:00:00"), (11, "13800000011", "2026-03-01 09:00:00")],
    )
    with pytest.raises(ConnectionError):  # the first page's write went through
        full_resync(source, FailingTarget(target, fail_at=2), page_size=2)
    assert table_and_cursors(target) == before

    report = full_resync(source, target, page_size=2)  # the retry does it all, once
    assert (report.added, report.changed) == (1, 1)
    assert target_phones(target) == source_phones(source)


def test_an_interval_failing_mid_run_moves_no_cursor(source, target, ten_brokers) -> None:
    before = table_and_cursors(target)
    put_brokers(source, brokers([11, 12, 13, 14], "2026-03-01 10:01:00"))
    with pytest.raises(ConnectionError):
        sync_interval(
            source, FailingTarget(target, fail_at=2), **broker_sync_db.INTERVAL, page_size=2
        )
    assert table_and_cursors(target) == before


class LosingSource:
    """The source connection, losing its brokers above ``keep`` once a page after the first is read."""

    def __init__(self, conn, keep: int) -> None:
        self.conn, self.keep, self.reads = conn, keep, 0

    def cursor(self):
        self.reads += 1
        if self.reads == 4:  # the count of mobiles, NOW(), the first page, then this one
            with self.conn.cursor() as cur:
                cur.execute("DELETE FROM ajk_brokerextend WHERE BrokerId > %s", (self.keep,))
            self.conn.commit()
        return self.conn.cursor()

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_a_source_emptied_during_the_run_is_refused_with_nothing_written(
    source, target, ten_brokers
) -> None:
    """Rows lost after the first pages were read and written: the refusal undoes those pages too."""
    before = table_and_cursors(target)
    put_brokers(source, [(1, "13900000001", "2026-03-01 09:00:00")])
    with pytest.raises(MassRemoval) as failure:
        full_resync(LosingSource(source, keep=3), target, page_size=2)
    assert (failure.value.would_remove, failure.value.total) == (8, 10)
    assert "Nothing was written" in str(failure.value)
    assert table_and_cursors(target) == before
