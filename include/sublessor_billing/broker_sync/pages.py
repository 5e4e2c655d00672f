"""One page of source rows against broker_phone: what it changes, and writing that (no commit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sublessor_billing.broker_sync.rules import MalformedRow, implausible_row, phones_for_page

_UPSERT = (
    "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) VALUES (%s, %s, %s)"
    " ON DUPLICATE KEY UPDATE phone = VALUES(phone),"
    " source_updated_datetime = VALUES(source_updated_datetime)"
)
_EXISTING = "SELECT broker_id, phone, source_updated_datetime FROM broker_phone"


@dataclass
class PageChanges:
    """What one page does to broker_phone; counts as in ``SyncReport``.

    ``departed``: the numbers the page takes from brokers (removed rows, changed
    mobiles); one of them leaves the blacklist unless some broker still has it
    once the sync is done (``removal.RemovalGuard``).
    """

    upserts: list[tuple[int, str, datetime]] = field(default_factory=list)
    removals: list[int] = field(default_factory=list)
    departed: list[str] = field(default_factory=list)
    malformed: list[MalformedRow] = field(default_factory=list)
    implausible: list[MalformedRow] = field(default_factory=list)
    added: int = 0
    changed: int = 0
    unchanged: int = 0


def page_changes(
    cur: Any,
    rows: list[tuple[Any, ...]],
    id_range: tuple[int, int | None] | None = None,
) -> PageChanges:
    """Compare a page of (BrokerId, UserMobile, updated_datetime) with broker_phone.

    ``id_range`` (full resync): the page owns that BrokerId range, so every
    broker_phone row in it that the page does not keep is removed. The rows read
    are locked (``FOR UPDATE``) for the write that follows.

    A malformed row is skipped: its broker keeps the broker_phone row it had (a
    value we cannot read is no reason to drop a known broker number, whose calls
    would then be charged).
    """
    wanted, bad = phones_for_page(rows)
    kept = {row.broker_id for row in bad}
    if id_range is None:
        existing = _existing_by_ids(cur, list(wanted))
    else:
        existing = _existing_in_range(cur, *id_range)
    changes = PageChanges(malformed=bad)
    for broker_id, (phone, updated) in wanted.items():
        old = existing.get(broker_id)
        if phone is None:
            if old is not None:
                changes.removals.append(broker_id)
                changes.departed.append(old[0])
            continue
        odd = implausible_row(broker_id, phone)
        if odd is not None:
            changes.implausible.append(odd)
        if old is None:
            changes.added += 1
        elif old[0] != phone:
            changes.changed += 1
            changes.departed.append(old[0])
        else:
            changes.unchanged += 1
        if old != (phone, updated):
            changes.upserts.append((broker_id, phone, updated))
    if id_range is not None:
        for bid, (phone, _) in existing.items():
            if bid not in wanted and bid not in kept:
                changes.removals.append(bid)
                changes.departed.append(phone)
    return changes


def write_changes(cur: Any, changes: PageChanges) -> int:
    """Upsert and delete as ``changes`` says (no commit); return how many rows were removed."""
    if changes.upserts:
        cur.executemany(_UPSERT, changes.upserts)
    if not changes.removals:
        return 0
    cur.execute(
        f"DELETE FROM broker_phone WHERE broker_id IN ({', '.join(['%s'] * len(changes.removals))})",
        changes.removals,
    )
    return int(cur.rowcount)


def _existing_by_ids(cur: Any, broker_ids: list[int]) -> dict[int, tuple[str, datetime]]:
    if not broker_ids:
        return {}
    cur.execute(
        f"{_EXISTING} WHERE broker_id IN ({', '.join(['%s'] * len(broker_ids))}) FOR UPDATE",
        broker_ids,
    )
    return {int(bid): (phone, updated) for bid, phone, updated in cur.fetchall()}


def _existing_in_range(cur: Any, above: int, upto: int | None) -> dict[int, tuple[str, datetime]]:
    if upto is None:
        cur.execute(f"{_EXISTING} WHERE broker_id > %s FOR UPDATE", (above,))
    else:
        cur.execute(
            f"{_EXISTING} WHERE broker_id > %s AND broker_id <= %s FOR UPDATE", (above, upto)
        )
    return {int(bid): (phone, updated) for bid, phone, updated in cur.fetchall()}
