"""List, replay or discard quarantined 400 call messages (an operator's command).

    python -m sublessor_billing.calls.quarantine list [--status quarantined|replayed|discarded|all]
    python -m sublessor_billing.calls.quarantine show ID            # raw body to stdout
    python -m sublessor_billing.calls.quarantine replay ID [--body corrected.json]
    python -m sublessor_billing.calls.quarantine discard ID --reason "test message"
    python -m sublessor_billing.calls.quarantine held [--limit 100] # calls the judge holds
    python -m sublessor_billing.calls.quarantine release LOG_ID     # after fixing the row
    python -m sublessor_billing.calls.quarantine release --reason-prefix "the judge failed" --yes
    python -m sublessor_billing.calls.quarantine release --all --yes

A replay validates the body (the corrected one, or the one received) exactly like
intake does, logs it (unjudged: the next run of call400_billing judges and
charges it), marks the quarantine row replayed and records who did it in
``billing_ops_action``, in one transaction. The Billing page in the Airflow UI
calls the same ``replay`` and ``discard``.

The command reads the Airflow connection ``user_prop_db``, like the DAGs and the
page (one source of credentials): run it where the ``airflow`` command works
(same ``AIRFLOW_HOME`` and configuration). That entry point is the only part of
this module that needs Airflow.

A held call is already logged but could not be judged (calls.held): fix its
row, then release it. A bulk release without ``--yes`` only says how many calls
it would release.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from dataclasses import dataclass
from typing import Any

from sublessor_billing.calls.held_command import HeldRefused, run_held_command
from sublessor_billing.calls.message import Invalid, intake_clock, parse_message
from sublessor_billing.calls.store import (
    insert_calls,
    is_data_error,
    list_quarantine,
    lock_quarantined,
    resolve_quarantined,
)
from sublessor_billing.db.transaction import read_only, transaction
from sublessor_billing.ops.audit import DISCARD, REPLAY, record_action
from sublessor_billing.phone import mask_numbers

# Read by earlier versions of the command; now ignored (with a warning).
LEGACY_DB_URL_ENV = "USER_PROP_DB_URL"
_PROCESS_CONTEXT = "_AIRFLOW_PROCESS_CONTEXT"


class ReplayRefused(ValueError):
    pass


class QuarantineRowMissing(ReplayRefused):
    pass


class AlreadyResolved(ReplayRefused):
    pass


class StillInvalid(ReplayRefused):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ReplayOutcome:
    quarantine_id: int
    call_id: str
    logged: bool  # False: a call with this call_id was already logged; the first copy stands


def replay(
    conn: Any, quarantine_id: int, corrected: bytes | None = None, *, actor: str | None = None
) -> ReplayOutcome:
    """Log a quarantined message (a corrected copy, or the body received) and mark the row replayed."""
    parsed = None if corrected is None else _valid(corrected, "corrected")
    with transaction(conn) as cur:
        stored = _lock_open_row(cur, quarantine_id)
        call = parsed if parsed is not None else _valid(stored, "received")
        logged = insert_calls(cur, [call]) == 1
        note = "logged" if logged else "call_id was already logged; first copy stands"
        resolution = f"replayed as call_id {call.call_id}: {note}"
        resolve_quarantined(cur, quarantine_id, "replayed", resolution)
        body = "corrected body" if parsed is not None else "body as received"
        record_action(
            cur,
            actor=actor,
            action=REPLAY,
            quarantine_id=quarantine_id,
            detail=f"{resolution} ({body})",
        )
    return ReplayOutcome(quarantine_id, call.call_id, logged)


def discard(conn: Any, quarantine_id: int, reason: str, *, actor: str | None = None) -> None:
    """Mark a quarantined message as deliberately not logged."""
    with transaction(conn) as cur:
        _lock_open_row(cur, quarantine_id)
        resolve_quarantined(cur, quarantine_id, "discarded", reason)
        record_action(cur, actor=actor, action=DISCARD, quarantine_id=quarantine_id, detail=reason)


DISCARD_REASON_MAX = 500  # as the Billing page; call400_quarantine.resolution is VARCHAR(512)


def _discard_reason(text: str) -> str:
    import argparse

    if not text.strip() or len(text) > DISCARD_REASON_MAX:
        raise argparse.ArgumentTypeError(
            f"give a reason of 1 to {DISCARD_REASON_MAX} characters (got {len(text)})"
        )
    return text


def _valid(body: bytes, which: str):
    parsed = parse_message(body, received_at=intake_clock())
    if isinstance(parsed, Invalid):
        raise StillInvalid(
            f"The {which} body is still invalid: {parsed.reason}. Nothing changed.", parsed.reason
        )
    return parsed


def _lock_open_row(cur: Any, quarantine_id: int) -> bytes:
    found = lock_quarantined(cur, quarantine_id)
    if found is None:
        raise QuarantineRowMissing(
            f"No call400_quarantine row with id {quarantine_id}; see `list`."
        )
    status, body = found
    if status != "quarantined":
        raise AlreadyResolved(f"call400_quarantine row {quarantine_id} is already {status}.")
    return body


def _open_user_prop_db(conn_id: str) -> Any:
    """The Airflow connection ``conn_id`` through the project's hook (migrations applied)."""
    # Like `airflow connections get`: a command run on an Airflow host also reads the
    # connections kept in the metadata database, not only environment and secrets backends.
    before = os.environ.get(_PROCESS_CONTEXT)
    os.environ[_PROCESS_CONTEXT] = "server"
    try:
        # Airflow logs to stdout while it loads; stdout is this command's output (`show`).
        with contextlib.redirect_stdout(sys.stderr):
            from sublessor_airflow.hooks.mysql import user_prop_db

            return user_prop_db(conn_id)
    finally:
        if before is None:
            del os.environ[_PROCESS_CONTEXT]
        else:
            os.environ[_PROCESS_CONTEXT] = before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sublessor_billing.calls.quarantine")
    parser.add_argument(
        "--conn-id", default="user_prop_db", help="Airflow connection of user_prop_db"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list")
    listing.add_argument("--status", default="quarantined")
    listing.add_argument("--limit", type=int, default=100)
    sub.add_parser("show").add_argument("id", type=int)
    replaying = sub.add_parser("replay")
    replaying.add_argument("id", type=int)
    replaying.add_argument(
        "--body", help="file holding the corrected JSON (default: replay the body as received)"
    )
    discarding = sub.add_parser("discard")
    discarding.add_argument("id", type=int)
    discarding.add_argument(
        "--reason", required=True, type=_discard_reason, help="why (1 to 500 characters)"
    )
    sub.add_parser("held").add_argument("--limit", type=int, default=100)
    releasing = sub.add_parser("release")
    which = releasing.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?", help="the call log id (see `held`)")
    which.add_argument("--reason-prefix", help="every held call whose reason starts so")
    which.add_argument("--all", action="store_true", help="every held call")
    releasing.add_argument("--yes", action="store_true", help="confirm a bulk release")
    args = parser.parse_args(argv)
    if os.environ.get(LEGACY_DB_URL_ENV):
        print(
            f"{LEGACY_DB_URL_ENV} is no longer read: this command uses the Airflow connection "
            f"{args.conn_id!r}, like the DAGs and the Billing page. Unset it.",
            file=sys.stderr,
        )
    conn = _open_user_prop_db(args.conn_id)
    try:
        return _run(conn, args)
    except (ReplayRefused, HeldRefused) as exc:
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
        with read_only(conn) as cur:  # releases the row lock
            body = _lock_any(cur, args.id)
        sys.stdout.buffer.write(body)
        return 0
    if args.command == "replay":
        corrected = None
        if args.body:
            with open(args.body, "rb") as handle:
                corrected = handle.read()
        try:
            outcome = replay(conn, args.id, corrected, actor=_cli_actor())
        except Exception as exc:
            if not is_data_error(exc):
                raise
            print(
                mask_numbers(
                    f"The call log refused the body: {exc}. Nothing changed: the row stays "
                    "quarantined. Replay a corrected copy (--body FILE) or discard it (--reason)."
                ),
                file=sys.stderr,
            )
            return 1
        state = "logged" if outcome.logged else "already logged (first copy stands)"
        print(f"Quarantine row {outcome.quarantine_id} replayed: call_id {outcome.call_id} {state}")
        return 0
    if args.command in ("held", "release"):
        return run_held_command(conn, args)
    discard(conn, args.id, args.reason, actor=_cli_actor())
    print(f"Quarantine row {args.id} discarded")
    return 0


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment (e.g. a bare container uid)
        return f"cli:uid {os.getuid()}"


def _lock_any(cur: Any, quarantine_id: int) -> bytes:
    found = lock_quarantined(cur, quarantine_id)
    if found is None:
        raise QuarantineRowMissing(
            f"No call400_quarantine row with id {quarantine_id}; see `list`."
        )
    return found[1]


if __name__ == "__main__":
    sys.exit(main())
