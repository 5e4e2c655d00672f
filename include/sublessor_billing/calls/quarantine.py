"""List, replay or discard quarantined 400 call messages (an operator's command).

    export USER_PROP_DB_URL=mysql://user:password@host:3306/user_prop_db
    python -m sublessor_billing.calls.quarantine list [--status quarantined|replayed|discarded|all]
    python -m sublessor_billing.calls.quarantine show ID            # raw body to stdout
    python -m sublessor_billing.calls.quarantine replay ID --body corrected.json
    python -m sublessor_billing.calls.quarantine discard ID --reason "test message"
    python -m sublessor_billing.calls.quarantine held [--limit 100] # calls the judge holds
    python -m sublessor_billing.calls.quarantine release LOG_ID     # after fixing the row
    python -m sublessor_billing.calls.quarantine release --reason-prefix "the judge failed" --yes
    python -m sublessor_billing.calls.quarantine release --all --yes

A replay validates the corrected body exactly like intake does, logs it
(unjudged: the next run of call400_billing judges and charges it) and marks
the quarantine row replayed, in one transaction. A held call is already logged
but could not be judged (calls.held): fix its row, then release it. A bulk
release without ``--yes`` only says how many calls it would release.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from sublessor_billing.calls.held import count_held, held_calls, release, release_all
from sublessor_billing.calls.message import Invalid, intake_clock, parse_message
from sublessor_billing.calls.store import (
    insert_calls,
    list_quarantine,
    lock_quarantined,
    resolve_quarantined,
)
from sublessor_billing.db.connect import MySqlTarget, connect

DB_URL_ENV = "USER_PROP_DB_URL"


class ReplayRefused(ValueError):
    pass


@dataclass(frozen=True)
class ReplayOutcome:
    quarantine_id: int
    call_id: str
    logged: bool  # False: a call with this call_id was already logged; the first copy stands


def replay(conn: Any, quarantine_id: int, corrected: bytes) -> ReplayOutcome:
    """Log a corrected copy of a quarantined message and mark the row replayed."""
    parsed = parse_message(corrected, received_at=intake_clock())
    if isinstance(parsed, Invalid):
        raise ReplayRefused(
            f"The corrected body is still invalid: {parsed.reason}. Nothing changed."
        )
    try:
        with conn.cursor() as cur:
            _lock_open_row(cur, quarantine_id)
            logged = insert_calls(cur, [parsed]) == 1
            note = "logged" if logged else "call_id was already logged; first copy stands"
            resolve_quarantined(
                cur, quarantine_id, "replayed", f"replayed as call_id {parsed.call_id}: {note}"
            )
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return ReplayOutcome(quarantine_id, parsed.call_id, logged)


def discard(conn: Any, quarantine_id: int, reason: str) -> None:
    """Mark a quarantined message as deliberately not logged."""
    try:
        with conn.cursor() as cur:
            _lock_open_row(cur, quarantine_id)
            resolve_quarantined(cur, quarantine_id, "discarded", reason)
        conn.commit()
    except Exception:
        conn.rollback()
        raise


def _lock_open_row(cur: Any, quarantine_id: int) -> bytes:
    found = lock_quarantined(cur, quarantine_id)
    if found is None:
        raise ReplayRefused(f"No call400_quarantine row with id {quarantine_id}; see `list`.")
    status, body = found
    if status != "quarantined":
        raise ReplayRefused(f"call400_quarantine row {quarantine_id} is already {status}.")
    return body


def target_from_url(url: str) -> MySqlTarget:
    parsed = urlparse(url)
    if parsed.scheme not in ("mysql", "mariadb") or not parsed.path.strip("/"):
        raise SystemExit(f"{DB_URL_ENV} must look like mysql://user:password@host:3306/database")
    return MySqlTarget(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 3306,
        user=unquote(parsed.username or "root"),
        password=unquote(parsed.password or ""),
        database=parsed.path.strip("/"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sublessor_billing.calls.quarantine")
    parser.add_argument("--db", default=os.environ.get(DB_URL_ENV), help=f"default ${DB_URL_ENV}")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list")
    listing.add_argument("--status", default="quarantined")
    listing.add_argument("--limit", type=int, default=100)
    sub.add_parser("show").add_argument("id", type=int)
    replaying = sub.add_parser("replay")
    replaying.add_argument("id", type=int)
    replaying.add_argument("--body", required=True, help="file holding the corrected JSON")
    discarding = sub.add_parser("discard")
    discarding.add_argument("id", type=int)
    discarding.add_argument("--reason", required=True)
    sub.add_parser("held").add_argument("--limit", type=int, default=100)
    releasing = sub.add_parser("release")
    which = releasing.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?", help="the call log id (see `held`)")
    which.add_argument("--reason-prefix", help="every held call whose reason starts so")
    which.add_argument("--all", action="store_true", help="every held call")
    releasing.add_argument("--yes", action="store_true", help="confirm a bulk release")
    args = parser.parse_args(argv)
    if not args.db:
        parser.error(f"give --db or set {DB_URL_ENV}")
    conn = connect(target_from_url(args.db))
    try:
        return _run(conn, args)
    except ReplayRefused as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        conn.close()


def _run(conn: Any, args: argparse.Namespace) -> int:
    if args.command == "list":
        status = None if args.status == "all" else args.status
        with conn.cursor() as cur:
            rows = list_quarantine(cur, status=status, limit=args.limit)
        for row in rows:
            start = bytes(row["body_start"]).decode("utf-8", "replace").replace("\n", " ")
            print(
                f"{row['id']}\t{row['status']}\tseen {row['seen_count']}\t{row['received_at']}\t"
                f"{row['reason']}\t{start[:80]}"
            )
        return 0
    if args.command == "show":
        with conn.cursor() as cur:
            body = _lock_any(cur, args.id)
        conn.rollback()
        sys.stdout.buffer.write(body)
        return 0
    if args.command == "replay":
        with open(args.body, "rb") as handle:
            outcome = replay(conn, args.id, handle.read())
        state = "logged" if outcome.logged else "already logged (first copy stands)"
        print(f"Quarantine row {outcome.quarantine_id} replayed: call_id {outcome.call_id} {state}")
        return 0
    if args.command in ("held", "release"):
        return _held(conn, args)
    discard(conn, args.id, args.reason)
    print(f"Quarantine row {args.id} discarded")
    return 0


def _held(conn: Any, args: argparse.Namespace) -> int:
    if args.command == "held":
        with conn.cursor() as cur:
            rows = held_calls(cur, limit=args.limit)
            total = count_held(cur)
        conn.rollback()
        for row in rows:
            print(
                f"{row['id']}\t{row['call_id']}\tsublessor {row['sublessor_id']}\t"
                f"caller {row['caller']}\tstart {row['start_time']}\t"
                f"held {row['held_at']} ({row['held_count']}x)\t{row['reason']}"
            )
        if total > len(rows):
            print(
                f"{total} calls are held; the oldest {len(rows)} are shown (--limit)",
                file=sys.stderr,
            )
        return 0
    if args.id is not None:
        with conn.cursor() as cur:
            released = release(cur, args.id)
        conn.commit()
        if not released:
            raise ReplayRefused(f"Call log id {args.id} is not held; see `held`.")
        print(f"Call log id {args.id} released: the next call400_billing run judges it")
        return 0
    return _release_many(conn, None if args.all else args.reason_prefix, args.yes)


def _release_many(conn: Any, reason_prefix: str | None, confirmed: bool) -> int:
    which = (
        "held calls"
        if reason_prefix is None
        else f"held calls whose reason starts {reason_prefix!r}"
    )
    with conn.cursor() as cur:
        if not confirmed:
            found = count_held(cur, reason_prefix=reason_prefix)
            conn.rollback()
            raise ReplayRefused(
                f"{found} {which} would be released (judged by the next call400_billing run, "
                "and charged if valid). Nothing changed; add --yes to release them."
            )
        released = release_all(cur, reason_prefix=reason_prefix)
    conn.commit()
    print(f"{released} {which} released: the next call400_billing run judges them")
    return 0


def _lock_any(cur: Any, quarantine_id: int) -> bytes:
    found = lock_quarantined(cur, quarantine_id)
    if found is None:
        raise ReplayRefused(f"No call400_quarantine row with id {quarantine_id}; see `list`.")
    return found[1]


if __name__ == "__main__":
    sys.exit(main())
