"""Reading anjuke_db.ajk_brokerextend: keyset pages and the source clock.

Each page ends its read transaction, so the next page sees current rows and no
long snapshot is held on the broker system.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sublessor_billing.db.transaction import read_only

_COLUMNS = "SELECT BrokerId, UserMobile, updated_datetime FROM ajk_brokerextend"
_WINDOW_FIRST = f"{_COLUMNS} WHERE updated_datetime >= %s AND updated_datetime < %s ORDER BY updated_datetime, BrokerId LIMIT %s"
_WINDOW_NEXT = (
    f"{_COLUMNS} WHERE updated_datetime < %s"
    " AND (updated_datetime > %s OR (updated_datetime = %s AND BrokerId > %s))"
    " ORDER BY updated_datetime, BrokerId LIMIT %s"
)
_ALL_NEXT = f"{_COLUMNS} WHERE BrokerId > %s ORDER BY BrokerId LIMIT %s"
_MOBILES = "SELECT COUNT(*) FROM ajk_brokerextend WHERE LENGTH(UserMobile) > 0"


def source_now(source: Any, source_name: str = "anjuke_db") -> datetime:
    """The source server's clock, the one ``updated_datetime`` is stamped with."""
    return read(source, source_name, "SELECT NOW()", ())[0][0]


def mobiles_count(source: Any, source_name: str = "anjuke_db") -> int:
    """Rows of ajk_brokerextend whose UserMobile is not empty, blank ones included.

    At most one number per such row can be in broker_phone after a full resync
    (the removal guard's early check). Counting by byte length errs on the side
    of more (spaces count), never fewer, whatever the column's collation.
    """
    return int(read(source, source_name, _MOBILES, ())[0][0])


def window_pages(
    source: Any, source_name: str, page_size: int, low: datetime, high: datetime
) -> Iterator[tuple[list[tuple[Any, ...]], None]]:
    """Keyset pages of the rows stamped in [low, high), on (updated_datetime, BrokerId)."""
    rows = read(source, source_name, _WINDOW_FIRST, (low, high, page_size))
    while rows:
        yield rows, None
        if len(rows) < page_size:
            return
        last = rows[-1]
        args = (high, last[2], last[2], last[0], page_size)
        rows = read(source, source_name, _WINDOW_NEXT, args)


def full_pages(
    source: Any, source_name: str, page_size: int
) -> Iterator[tuple[list[tuple[Any, ...]], tuple[int, int | None]]]:
    """BrokerId pages with the range each owns: (last id before, its last id].

    A short page is the last: it also owns every broker_id above it. The first
    starts below every BrokerId, 0 included.
    """
    previous = -1
    while True:
        rows = read(source, source_name, _ALL_NEXT, (previous, page_size))
        if len(rows) < page_size:
            yield rows, (previous, None)
            return
        upper = int(rows[-1][0])
        yield rows, (previous, upper)
        previous = upper


def read(source: Any, source_name: str, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Read one page, then end the read transaction so the next page sees current rows."""
    try:
        with read_only(source) as cur:
            cur.execute(sql, args)
            rows = list(cur.fetchall())
    except getattr(source, "OperationalError", OSError) as exc:
        raise ConnectionError(
            f"Lost the source {source_name} while reading ajk_brokerextend: {exc}. "
            "Check the server and the connection; the task retries from the interval start."
        ) from exc
    return rows
