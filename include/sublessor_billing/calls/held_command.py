"""The ``held`` and ``release`` subcommands of the quarantine command (calls.quarantine)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sublessor_billing.calls.held import count_held, held_calls, release, release_all
from sublessor_billing.db.transaction import read_only, transaction


class HeldRefused(ValueError):
    """The command changed nothing (the call is not held, or a bulk release lacks --yes)."""


def run_held_command(conn: Any, args: argparse.Namespace) -> int:
    """``held`` (list the calls the judge holds) and ``release`` (one, by reason, or all)."""
    if args.command == "held":
        with read_only(conn) as cur:
            rows = held_calls(cur, limit=args.limit)
            total = count_held(cur)
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
        with transaction(conn) as cur:
            released = release(cur, args.id)
        if not released:
            raise HeldRefused(f"Call log id {args.id} is not held; see `held`.")
        print(f"Call log id {args.id} released: the next call400_billing run judges it")
        return 0
    return _release_many(conn, None if args.all else args.reason_prefix, args.yes)


def _release_many(conn: Any, reason_prefix: str | None, confirmed: bool) -> int:
    which = (
        "held calls"
        if reason_prefix is None
        else f"held calls whose reason starts {reason_prefix!r}"
    )
    if not confirmed:
        with read_only(conn) as cur:
            found = count_held(cur, reason_prefix=reason_prefix)
        raise HeldRefused(
            f"{found} {which} would be released (judged by the next call400_billing run, "
            "and charged if valid). Nothing changed; add --yes to release them."
        )
    with transaction(conn) as cur:
        released = release_all(cur, reason_prefix=reason_prefix)
    print(f"{released} {which} released: the next call400_billing run judges them")
    return 0
