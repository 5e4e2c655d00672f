"""What a sync would take out of broker_phone, recorded before anything is deleted.

Two temporary tables of the sync's connection (so the account needs the
CREATE TEMPORARY TABLES privilege; docs/broker_phone_sync.md):

- ``broker_phone_sync_removing``: the brokers whose row the sync removes;
- ``broker_phone_sync_departed``: the numbers it takes from brokers, the old
  number of every row it removes or whose mobile changes, each once.

They are created before the sync's transaction and dropped after it
(``create_tables``, ``drop_tables``), their rows written inside it.

Pages record their removals here instead of deleting (their upserts are written
at once); the removal guard counts the numbers that would leave and decides;
only an accepted sync deletes, in chunks of a bounded size. A refused sync has
deleted nothing, and memory stays flat whatever the sync would remove.

Both columns are copied from broker_phone (``CREATE ... SELECT ... LIMIT 0``):
type, character set and collation. A temporary table otherwise takes the
database's default collation, and one other than broker_phone.phone's (a
database created ``COLLATE utf8mb4_unicode_ci``, MariaDB 11.4+ defaults) made
every comparison fail with error 1267 "Illegal mix of collations".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import BROKER_PHONE

log = logging.getLogger(__name__)

_ACCESS_DENIED = 1044  # the account lacks CREATE TEMPORARY TABLES on the database
_REMOVING = "broker_phone_sync_removing"
_DEPARTED = "broker_phone_sync_departed"
_CREATE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS {table} (PRIMARY KEY ({column})) ENGINE=InnoDB"
    f" SELECT {{column}} FROM {BROKER_PHONE} LIMIT 0"
)
_NOTE_REMOVING = f"INSERT IGNORE INTO {_REMOVING} (broker_id) VALUES (%s)"
_NOTE_DEPARTED = f"INSERT IGNORE INTO {_DEPARTED} (phone) VALUES (%s)"
_NEXT_REMOVING = (
    f"SELECT broker_id FROM {_REMOVING} WHERE broker_id > %s ORDER BY broker_id LIMIT %s"
)
# A departed number leaves when no broker_phone row keeps it: none has it, or
# only rows that the sync removes. Upserts are already written, so a changed
# mobile's row holds its new number.
_LEAVING = (
    f"SELECT COUNT(*) FROM {_DEPARTED} d WHERE NOT EXISTS ("
    f" SELECT 1 FROM {BROKER_PHONE} b WHERE b.phone = d.phone"
    f" AND NOT EXISTS (SELECT 1 FROM {_REMOVING} r WHERE r.broker_id = b.broker_id))"
)


class Departures:
    """The removals and departing numbers of one sync, on its connection (no commit)."""

    def __init__(self, cur: Any, chunk: int) -> None:
        """Start on the tables ``create_tables`` made, emptied (an earlier sync's, if any)."""
        self.chunk = max(int(chunk), 1)
        self.planned = False  # any removal recorded yet
        for table in (_REMOVING, _DEPARTED):
            cur.execute(f"DELETE FROM {table}")

    def remove(self, cur: Any, rows: list[tuple[int, str]]) -> None:
        """Record brokers whose row goes, given as (broker_id, their current number)."""
        if rows:
            cur.executemany(_NOTE_REMOVING, [(broker_id,) for broker_id, _ in rows])
            self.depart(cur, [phone for _, phone in rows])
            self.planned = True

    def depart(self, cur: Any, phones: list[str]) -> None:
        """Record numbers taken from brokers (each once)."""
        if phones:
            cur.executemany(_NOTE_DEPARTED, [(phone,) for phone in phones])

    def keep(self, cur: Any, broker_ids: list[int]) -> None:
        """Cancel earlier removals of brokers a later page keeps (a row read twice in a window)."""
        if self.planned and broker_ids:
            cur.execute(
                f"DELETE FROM {_REMOVING} WHERE broker_id IN ({marks(broker_ids)})", broker_ids
            )

    def removing(self, cur: Any) -> int:
        """How many broker_phone rows the sync would remove."""
        cur.execute(f"SELECT COUNT(*) FROM {_REMOVING}")
        return int(cur.fetchone()[0])

    def leaving(self, cur: Any) -> int:
        """How many numbers would leave the blacklist once the recorded rows are removed."""
        cur.execute(_LEAVING)
        return int(cur.fetchone()[0])

    def delete(self, cur: Any) -> int:
        """Remove the recorded rows, ``chunk`` ids a statement; return how many went."""
        removed, after = 0, -1
        while True:
            cur.execute(_NEXT_REMOVING, (after, self.chunk))
            ids = [int(row[0]) for row in cur.fetchall()]
            if not ids:
                return removed
            cur.execute(f"DELETE FROM {BROKER_PHONE} WHERE broker_id IN ({marks(ids)})", ids)
            removed += int(cur.rowcount)
            after = ids[-1]


def create_tables(conn: Any) -> None:
    """Create the two tables on ``conn``, outside any transaction (no pending writes).

    With autocommit on for the two statements: MySQL 5.6/5.7 with
    ``enforce_gtid_consistency`` refuses CREATE/DROP TEMPORARY TABLE in a
    transaction, which a connection with autocommit off always is (error 1787).
    """
    conn.rollback()  # nothing is pending here; end any read snapshot first
    with _autocommit(conn), conn.cursor() as cur:
        for table, column in ((_REMOVING, "broker_id"), (_DEPARTED, "phone")):
            try:
                cur.execute(_CREATE.format(table=table, column=column))
            except Exception as exc:
                if exc.args and exc.args[0] == _ACCESS_DENIED:
                    raise PermissionError(
                        f"broker_phone_sync cannot create its temporary table {table}: {exc}. "
                        "The user_prop_db account needs the CREATE TEMPORARY TABLES privilege: "
                        "GRANT CREATE TEMPORARY TABLES ON <database>.* TO <its login> "
                        "(README, Database accounts). Nothing was written."
                    ) from exc
                raise


def drop_tables(conn: Any) -> None:
    """Drop the tables after the commit or the rollback (autocommit on, as for creating)."""
    try:
        conn.rollback()  # switching autocommit on would commit anything still open
        with _autocommit(conn), conn.cursor() as cur:
            cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {_REMOVING}, {_DEPARTED}")
    except Exception:  # the connection is gone: its temporary tables went with it
        log.debug(
            "Could not drop %s, %s; the server drops them with the connection", _REMOVING, _DEPARTED
        )


@contextmanager
def _autocommit(conn: Any) -> Iterator[None]:
    conn.autocommit(True)
    try:
        yield
    finally:
        conn.autocommit(False)
