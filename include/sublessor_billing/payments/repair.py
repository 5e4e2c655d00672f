"""Repairs of the payment log an operator runs (docs/payments.md).

    python -m sublessor_billing.payments.repair release-held          # says what it would do
    python -m sublessor_billing.payments.repair release-held --yes [--above N]
    python -m sublessor_billing.payments.repair orphans [--days 2]    # says what it found
    python -m sublessor_billing.payments.repair orphans --yes [--days 2]

``release-held``: pending orders below ORDER_ID_MIN are never sent (the charge
task holds them back and fails naming them). This RAISES the payment log's
AUTO_INCREMENT, never lowers it (InnoDB lowers it on request, down to MAX(id) + 1,
and an order id sent before and reused is refused with 1004: its call is never
charged), to the highest of ORDER_ID_MIN, the counter now, MAX(id) + 1 and, with
``--above N``, N + 1. When no row from ORDER_ID_MIN up is left (an emptied log),
nothing here says which ids were sent: it refuses unless ``--above N`` says (the
highest order id ever sent, from the payment center or a backup). Then, in ONE
transaction, it sets ``order_allocated = 0`` on the held rows' calls and deletes
those rows, so the next pass gives the calls new order ids. Only ``pending`` rows
below the range are touched: they were never sent, so nothing was charged for them.

``orphans``: names the valid calls received in the last ``--days`` at
``order_allocated = 1`` without a payment row (``payments/orphans.py``; a charge
pass finds those of two days and fails). With ``--yes``, sets them back to 0, so
the next pass gives them new order ids and charges them: only after checking with
the payment center (``/trade/query`` of the deleted row's order id) that the
order was never charged. A charged one needs its payment row restored instead.

Both count the calls they set back (``allocation.hand_back``), so the sweep that
gives them their order does not report them as missed. Like ``calls.quarantine``,
the command reads the Airflow connection ``user_prop_db``: run it where the
``airflow`` command works.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import CALL_LOG, PAYMENT_LOG
from sublessor_billing.db.transaction import transaction
from sublessor_billing.payments import orphans
from sublessor_billing.payments.allocation import hand_back
from sublessor_billing.payments.orphans import SHOWN
from sublessor_billing.payments.outcomes import ORDER_ID_MIN
from sublessor_billing.payments.store import NO_ORDER, WITHOUT_ORDER

LOCK_WAIT_S = 60  # for the ALTER's metadata lock: fail rather than queue every writer behind it

_HELD = f"FROM {PAYMENT_LOG} FORCE INDEX (PRIMARY) WHERE id < %s AND status = 'pending'"
_RESET_CALLS = f"""
UPDATE {PAYMENT_LOG} p FORCE INDEX (PRIMARY)
  JOIN {CALL_LOG} c FORCE INDEX (uk_call_id) ON c.call_id = p.call_id
SET c.order_allocated = 0
WHERE p.id < %s AND p.status = 'pending' AND c.order_allocated = 1"""
_DELETE = f"DELETE FROM {PAYMENT_LOG} WHERE id < %s AND status = 'pending'"
_MAX_ID = f"SELECT IFNULL(MAX(id), 0) FROM {PAYMENT_LOG}"
_COUNTER = (
    "SELECT AUTO_INCREMENT FROM information_schema.TABLES"
    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s"
)
_RESET_ORPHANS = f"""
UPDATE {CALL_LOG} c FORCE INDEX (PRIMARY) {WITHOUT_ORDER}
SET c.order_allocated = 0
WHERE c.id IN ({{ids}}) AND c.filter_rule = 1 AND c.order_allocated = 1 AND {NO_ORDER}"""


class HighestSentUnknown(RuntimeError):
    """No order id from ORDER_ID_MIN up is left in the payment log: which ids were sent is unknown."""

    def __init__(self, counter: int) -> None:
        super().__init__(
            f"No row of {PAYMENT_LOG} has an order id from {ORDER_ID_MIN} up (the log was "
            f"emptied?), so the ids already sent to the payment center are unknown here (the "
            f"AUTO_INCREMENT, {counter}, may itself have gone back). Reusing one gets 1004 and "
            "its call is never charged. Nothing was changed. Find the highest order id ever sent "
            "(the payment center, or a backup of the payment log) and run again with --above "
            f"<that id> (--above {ORDER_ID_MIN - 1} if none was ever sent)."
        )


@dataclass(frozen=True)
class Released:
    rows: int  # pending rows below the range deleted
    calls: int  # their calls set back to order_allocated = 0
    order_ids: tuple[int, ...]  # the first SHOWN of the deleted ids
    counter: int  # the payment log's AUTO_INCREMENT after


def held_orders(conn: Any) -> tuple[int, list[int]]:
    """How many pending rows are below ORDER_ID_MIN, and the first ``SHOWN`` ids."""
    with transaction(conn) as cur:
        cur.execute(f"SELECT COUNT(*) {_HELD}", (ORDER_ID_MIN,))
        total = int(cur.fetchone()[0])
        cur.execute(f"SELECT id {_HELD} ORDER BY id LIMIT %s", (ORDER_ID_MIN, SHOWN))
        ids = [int(r[0]) for r in cur.fetchall()]
    return total, ids


def order_counter(conn: Any) -> tuple[int, int]:
    """(the payment log's AUTO_INCREMENT now, its MAX(id)), read live."""
    with transaction(conn) as cur:
        # MySQL 8 caches information_schema's AUTO_INCREMENT for a day unless told not to.
        if cur.execute("SHOW VARIABLES LIKE 'information_schema_stats_expiry'"):
            cur.execute("SET SESSION information_schema_stats_expiry = 0")
        cur.execute(_COUNTER, (PAYMENT_LOG,))
        counter = int(cur.fetchone()[0] or 0)
        cur.execute(_MAX_ID)
        max_id = int(cur.fetchone()[0])
    return counter, max_id


def counter_target(counter: int, max_id: int, above: int | None) -> int:
    """The AUTO_INCREMENT to raise to: never below what it is; ``HighestSentUnknown`` when no
    id from ORDER_ID_MIN up is left and ``above`` (the highest id ever sent) is not given."""
    if max_id < ORDER_ID_MIN and above is None:
        raise HighestSentUnknown(counter)
    return max(ORDER_ID_MIN, counter, max_id + 1, -1 if above is None else above + 1)


def release_held(conn: Any, *, above: int | None = None) -> Released:
    """Raise the AUTO_INCREMENT (never lower it), then delete the held rows and reset their calls."""
    counter, max_id = order_counter(conn)
    target = counter_target(counter, max_id, above)
    if target > counter:
        with conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = %s", (LOCK_WAIT_S,))
            cur.execute(f"ALTER TABLE {PAYMENT_LOG} AUTO_INCREMENT = {int(target)}")
        counter, _ = order_counter(conn)
        if counter < target:
            raise RuntimeError(
                f"ALTER TABLE {PAYMENT_LOG} AUTO_INCREMENT = {target} left it at {counter}: "
                "nothing was released; ask a DBA why."
            )
    with transaction(conn) as cur:
        hand_back(cur, 0)  # the allocation's row first, as an allocation round locks
        cur.execute(f"SELECT id {_HELD} ORDER BY id FOR UPDATE", (ORDER_ID_MIN,))
        ids = [int(r[0]) for r in cur.fetchall()]
        calls = int(cur.execute(_RESET_CALLS, (ORDER_ID_MIN,))) if ids else 0
        rows = int(cur.execute(_DELETE, (ORDER_ID_MIN,))) if ids else 0
        hand_back(cur, calls)
    return Released(rows, calls, tuple(ids[:SHOWN]), counter)


def reset_orphans(conn: Any, *, days: int) -> tuple[int, list[str]]:
    """Set the orphans received in the last ``days`` back to 0 (each chunk's in one transaction,
    re-checked); how many, and the first ``SHOWN`` call ids."""
    reset, shown = 0, []
    for found in orphans.scan(conn, days=days):
        with transaction(conn) as cur:
            hand_back(cur, 0)  # the allocation's row first, as an allocation round locks
            ids = [row_id for row_id, _ in found]  # at most orphans.CHUNK: one read chunk's
            n = int(cur.execute(_RESET_ORPHANS.format(ids=marks(ids)), ids))
            hand_back(cur, n)
        reset += n
        shown.extend(call_id for _, call_id in found[: SHOWN - len(shown)])
    return reset, shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sublessor_billing.payments.repair")
    parser.add_argument(
        "--conn-id", default="user_prop_db", help="Airflow connection of user_prop_db"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    releasing = sub.add_parser("release-held", help="pending orders below the range")
    releasing.add_argument("--yes", action="store_true", help="do it (without: only say)")
    releasing.add_argument(
        "--above", type=int, help="the highest order id ever sent (needed after an emptied log)"
    )
    orphaned = sub.add_parser("orphans", help="calls at order_allocated = 1 without an order")
    orphaned.add_argument("--days", type=int, default=2, help="received in the last N days")
    orphaned.add_argument(
        "--yes", action="store_true", help="set them back to 0 (only if never charged)"
    )
    args = parser.parse_args(argv)
    if args.command == "release-held" and args.above is not None and args.above < ORDER_ID_MIN - 1:
        parser.error(f"--above: an order id, at least {ORDER_ID_MIN - 1} (none ever sent)")

    # the operators' commands share one way to the database: the Airflow connection
    from sublessor_billing.calls.quarantine import _open_user_prop_db

    conn = _open_user_prop_db(args.conn_id)
    try:
        return _orphans(conn, args) if args.command == "orphans" else _release(conn, args)
    finally:
        conn.close()


def _orphans(conn: Any, args: argparse.Namespace) -> int:
    days = max(1, args.days)
    if args.yes:
        reset, shown = reset_orphans(conn, days=days)
        print(
            f"{reset} call(s) set back to order_allocated = 0; the next run of call400_billing "
            f"gives them new order ids and charges them: {', '.join(shown)}"
        )
        return 0
    total, shown = 0, []
    for found in orphans.scan(conn, days=days):
        total += len(found)
        shown.extend(call_id for _, call_id in found[: SHOWN - len(shown)])
    if not total:
        print(f"No valid call received in the last {days} day(s) is flagged without its order.")
        return 0
    print(
        f"{total} valid call(s) received in the last {days} day(s) have order_allocated = 1 "
        f"but no payment row: {', '.join(shown)}{' ...' if total > len(shown) else ''}. For "
        "each, ask the payment center about the deleted row's order id (/trade/query): charged "
        "-> restore the row; never charged -> run again with --yes (docs/payments.md).",
        file=sys.stderr,
    )
    return 1


def _release(conn: Any, args: argparse.Namespace) -> int:
    total, ids = held_orders(conn)
    if not total:
        print(f"No pending order below {ORDER_ID_MIN}: nothing to release.")
        return 0
    counter, max_id = order_counter(conn)
    try:
        target = counter_target(counter, max_id, args.above)
    except HighestSentUnknown as exc:
        print(str(exc), file=sys.stderr)
        return 1
    shown = f"{', '.join(map(str, ids))}{' ...' if total > len(ids) else ''}"
    if not args.yes:
        print(
            f"{total} pending order(s) below {ORDER_ID_MIN} would be deleted and their calls "
            f"reset (order_allocated = 0): {shown}; the AUTO_INCREMENT would be "
            f"{f'raised from {counter} to {target}' if target > counter else f'kept at {counter}'}"
            ". Run again with --yes.",
            file=sys.stderr,
        )
        return 1
    done = release_held(conn, above=args.above)
    print(
        f"Deleted {done.rows} pending order(s) below {ORDER_ID_MIN} (never sent) and set "
        f"order_allocated = 0 on {done.calls} call(s); the next run of call400_billing gives "
        f"them new order ids from {done.counter} up: {', '.join(map(str, done.order_ids))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
