"""One page of source rows against broker_phone: plan it, write its upserts (no commit).

Removals are not written here: a page records them (``departures``) and the
sync deletes them only once the removal guard has accepted the whole sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sublessor_billing.broker_sync.rules import MalformedRow, implausible_row, phones_for_page
from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import BROKER_PHONE

if TYPE_CHECKING:
    from sublessor_billing.broker_sync.departures import Departures

_UPSERT = (
    f"INSERT INTO {BROKER_PHONE} (broker_id, phone, source_updated_datetime) VALUES (%s, %s, %s)"
    " ON DUPLICATE KEY UPDATE phone = VALUES(phone),"
    " source_updated_datetime = VALUES(source_updated_datetime)"
)
_EXISTING = f"SELECT broker_id, phone, source_updated_datetime FROM {BROKER_PHONE}"

Existing = dict[int, tuple[str, datetime]]


@dataclass
class PageChanges:
    """What one page does to broker_phone; counts as in ``SyncReport``.

    ``removing``: the rows it records for removal (``departures``); a removed
    row's number, like a changed mobile's old one, leaves the blacklist unless
    some broker still has it once the sync is done (``removal.RemovalGuard``).
    """

    upserts: list[tuple[int, str, datetime]] = field(default_factory=list)
    removing: int = 0
    malformed: list[MalformedRow] = field(default_factory=list)
    implausible: list[MalformedRow] = field(default_factory=list)
    added: int = 0
    changed: int = 0
    unchanged: int = 0


def plan_page(
    cur: Any,
    rows: list[tuple[Any, ...]],
    id_range: tuple[int, int | None] | None,
    departures: Departures,
) -> PageChanges:
    """Compare a page of (BrokerId, UserMobile, updated_datetime) with broker_phone.

    ``id_range`` (full resync): the page owns that BrokerId range, so every
    broker_phone row in it that the page does not keep is removed; the range is
    read in chunks of ``departures.chunk`` rows (the last page owns every id
    above it, possibly the whole table). The rows read are locked
    (``FOR UPDATE``) for the writes that follow.

    A malformed row is skipped: its broker keeps the broker_phone row it had (a
    value we cannot read is no reason to drop a known broker number, whose calls
    would then be charged).
    """
    wanted, bad = phones_for_page(rows)
    kept = {row.broker_id for row in bad}
    changes = PageChanges(malformed=bad)
    if id_range is None:
        existing = _existing_by_ids(cur, list(wanted))
        # A row read twice in one window (changed again while the window was read):
        # the later read wins over a removal an earlier page recorded.
        departures.keep(cur, [bid for bid, (phone, _) in wanted.items() if phone] + sorted(kept))
    else:
        existing = {}
        for chunk in _chunks_in_range(cur, *id_range, departures.chunk):
            gone = []
            for bid, phone, updated in chunk:
                if bid in wanted:
                    existing[bid] = (phone, updated)
                elif bid not in kept:
                    gone.append((bid, phone))
            departures.remove(cur, gone)
            changes.removing += len(gone)
    gone, departed = [], []
    for broker_id, (phone, updated) in wanted.items():
        old = existing.get(broker_id)
        if phone is None:
            if old is not None:
                gone.append((broker_id, old[0]))
            continue
        odd = implausible_row(broker_id, phone)
        if odd is not None:
            changes.implausible.append(odd)
        if old is None:
            changes.added += 1
        elif old[0] != phone:
            changes.changed += 1
            departed.append(old[0])
        else:
            changes.unchanged += 1
        if old != (phone, updated):
            changes.upserts.append((broker_id, phone, updated))
    departures.remove(cur, gone)
    departures.depart(cur, departed)
    changes.removing += len(gone)
    return changes


def write_upserts(cur: Any, changes: PageChanges) -> None:
    """Upsert the page's new and changed mobiles (no commit)."""
    if changes.upserts:
        cur.executemany(_UPSERT, changes.upserts)


def _existing_by_ids(cur: Any, broker_ids: list[int]) -> Existing:
    if not broker_ids:
        return {}
    cur.execute(
        f"{_EXISTING} WHERE broker_id IN ({marks(broker_ids)}) FOR UPDATE",
        broker_ids,
    )
    return {int(bid): (phone, updated) for bid, phone, updated in cur.fetchall()}


def _chunks_in_range(
    cur: Any, above: int, upto: int | None, chunk: int
) -> Iterator[list[tuple[int, str, datetime]]]:
    """The broker_phone rows with ``above < broker_id <= upto`` (no upper bound: None), in chunks."""
    bound = "" if upto is None else " AND broker_id <= %s"
    sql = f"{_EXISTING} WHERE broker_id > %s{bound} ORDER BY broker_id LIMIT %s FOR UPDATE"
    while True:
        args = (above, chunk) if upto is None else (above, upto, chunk)
        cur.execute(sql, args)
        rows = [(int(bid), phone, updated) for bid, phone, updated in cur.fetchall()]
        if rows:
            yield rows
        if len(rows) < chunk:
            return
        above = rows[-1][0]
