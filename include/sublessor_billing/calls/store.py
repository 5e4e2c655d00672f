"""SQL of the call log and the quarantine: the only place these statements are written."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sublessor_billing.calls.message import Call, Invalid
from sublessor_billing.calls.rules import FilterRule, base_rule
from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import CALL_LOG, QUARANTINE
from sublessor_billing.phone import mask_phone

log = logging.getLogger(__name__)

_COLUMNS = (
    "call_id, sublessor_id, prop_id, caller, caller_normalized, called, ext, "
    "status, start_time, duration, call_type"
)
_STATEMENT_BYTES = 1024 * 1024
_INSERT_CALLS = (
    f"INSERT IGNORE INTO {CALL_LOG} ({_COLUMNS}, filter_rule, judged_at) VALUES ".encode()
)
_QUARANTINE_ROW = "(%s, %s, %s, %s, %s)"


class CoercedValue(ValueError):
    """INSERT IGNORE would have stored a value other than the one given."""


# Server errors about a value (not the connection, locks or permissions).
_DATA_ERROR_CODES = {1048, 1264, 1265, 1292, 1300, 1366, 1367, 1406, 1411}


def is_data_error(exc: BaseException) -> bool:
    """Whether the server (or our own check) refused a value, rather than the connection failing."""
    import MySQLdb

    if isinstance(exc, CoercedValue | MySQLdb.DataError):
        return True
    code = exc.args[0] if isinstance(exc, MySQLdb.Error) and exc.args else None
    return code in _DATA_ERROR_CODES


def insert_calls(
    cur: Any,
    calls: Sequence[Call],
    *,
    short_threshold: int | None = None,
    statement_bytes: int = _STATEMENT_BYTES,
) -> int:
    """Log calls; a call_id already logged is absorbed. Return how many rows were new.

    With ``short_threshold``, rules 2 and 3 (which need only the call itself) are
    applied on arrival; every other call is logged unjudged (filter_rule 0). Rows
    go in statements of at most ``statement_bytes`` (at least one row each).
    """
    inserted = 0
    values = _call_values(cur.connection, calls, short_threshold)
    start = 0
    while start < len(calls):
        # Statements of at most ~1 MiB: far under max_allowed_packet (4 MiB on MySQL 5.7).
        end, size = start, 0
        while end < len(calls) and (end == start or size + len(values[end]) <= statement_bytes):
            size += len(values[end]) + 1
            end += 1
        cur.execute(_INSERT_CALLS + b",".join(values[start:end]))
        new = cur.rowcount
        _refuse_coerced_values(cur, duplicates=end - start - new)
        if new < end - start:
            warn_differing_duplicates(cur, calls[start:end])
        inserted += new
        start = end
    return inserted


def _call_values(conn: Any, calls: Sequence[Call], short_threshold: int | None) -> list[bytes]:
    """One ``(...)`` per call, escaped by the server's client library.

    Several times faster than ``executemany``/``%s`` parameters, which escape each
    value through Python-level dispatch. Strings are quoted by ``string_literal``
    (mysql_real_escape_string, connection charset); the integers and the datetime
    are formatted from Python ints and a datetime, so they cannot inject anything.
    """
    quote = conn.string_literal
    rules = [
        (None if short_threshold is None else base_rule(c.status, c.duration, short_threshold))
        or FilterRule.UNJUDGED
        for c in calls
    ]
    return [
        b"(%s,%d,%d,%s,%s,%s,%s,%d,'%s',%d,%s,%d,%s)"
        % (
            quote(c.call_id.encode()),
            c.sublessor_id,
            c.prop_id,
            quote(c.caller.encode()),
            quote(c.caller_normalized.encode()),
            quote(c.called.encode()),
            quote(c.ext.encode()),
            c.status,
            c.start_time.isoformat(" ", "seconds").encode(),
            c.duration,
            quote(c.call_type.encode()),
            rule,
            b"NOW(3)" if rule else b"NULL",
        )
        for c, rule in zip(calls, rules, strict=True)
    ]


def _refuse_coerced_values(cur: Any, *, duplicates: int) -> None:
    """Fail if INSERT IGNORE bent a value to fit (only duplicate-key warnings are expected).

    Validation makes this unreachable; should it ever be reached, the caller rolls
    back (intake then quarantines the offending call) rather than bill a truncated
    or clipped call.
    """
    if cur.connection.warning_count() <= duplicates:
        return
    cur.execute("SHOW WARNINGS")
    other = [row for row in cur.fetchall() if int(row[1]) != 1062]
    raise CoercedValue(
        f"the call log would have stored altered values ({other[:3]}): a validation gap in "
        "sublessor_billing.calls.message, fix it and replay the message"
    )


def warn_differing_duplicates(cur: Any, calls: Sequence[Call]) -> int:
    """Log a warning for each call whose stored copy differs from it; return how many."""
    # call_id compares exactly, trailing spaces included (NO PAD collation or VARBINARY).
    wanted: dict[str, Call] = {}
    for call in calls:
        wanted.setdefault(call.call_id, call)
    cur.execute(
        f"SELECT {_COLUMNS} FROM {CALL_LOG} WHERE call_id IN ({marks(calls)})",
        [call.call_id for call in calls],
    )
    differing = 0
    for stored in cur.fetchall():
        stored = (as_text(stored[0]), *stored[1:])
        call = wanted.get(stored[0])
        if call is not None and stored != call.row():
            differing += 1
            log.warning(
                "Duplicate call_id %s differs from the logged copy (caller %s, sublessor %s); "
                "the first copy stands",
                call.call_id,
                mask_phone(call.caller),
                call.sublessor_id,
            )
    return differing


def as_text(call_id: str | bytes) -> str:
    """A call_id as read back, to compare or key on: bytes where the column is VARBINARY.

    Strict UTF-8 (what intake writes): bytes that are not UTF-8 raise rather than
    turn into a different id.
    """
    return call_id.decode("utf-8") if isinstance(call_id, bytes) else call_id


def call_id_for_display(call_id: str | bytes) -> str:
    """A call_id to show (logs, messages, the command line), never to key on: bad bytes as \\xNN."""
    return call_id.decode("utf-8", "backslashreplace") if isinstance(call_id, bytes) else call_id


def quarantine(cur: Any, items: Sequence[tuple[str, bytes, Invalid, str | None]]) -> None:
    """Keep invalid messages (sha256, raw body, reason, routing key); a body seen before bumps ``seen_count``."""
    if not items:
        return
    params: list = []
    for digest, body, invalid, routing_key in items:
        params += [
            digest,
            bytes(body),
            invalid.reason[:512],
            invalid.call_id,
            (routing_key or "")[:255] or None,
        ]
    cur.execute(
        f"INSERT INTO {QUARANTINE} (body_sha256, raw_body, reason, call_id, routing_key) "
        "VALUES "
        + ", ".join([_QUARANTINE_ROW] * len(items))
        + " ON DUPLICATE KEY UPDATE seen_count = seen_count + 1",
        params,
    )


def list_quarantine(
    cur: Any, *, status: str | None = "quarantined", limit: int = 100
) -> list[dict]:
    where, params = ("WHERE status = %s", [status]) if status else ("", [])
    cur.execute(
        "SELECT id, status, seen_count, received_at, call_id, reason, LEFT(raw_body, 200) "
        f"FROM {QUARANTINE} {where} ORDER BY id LIMIT %s",
        params + [limit],
    )
    keys = ("id", "status", "seen_count", "received_at", "call_id", "reason", "body_start")
    return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


def lock_quarantined(cur: Any, quarantine_id: int) -> tuple[str, bytes] | None:
    cur.execute(
        f"SELECT status, raw_body FROM {QUARANTINE} WHERE id = %s FOR UPDATE", (quarantine_id,)
    )
    row = cur.fetchone()
    return (row[0], bytes(row[1])) if row else None


def resolve_quarantined(cur: Any, quarantine_id: int, status: str, resolution: str) -> None:
    cur.execute(
        f"UPDATE {QUARANTINE} SET status = %s, resolution = %s, resolved_at = NOW(3) WHERE id = %s",
        (status, resolution[:512], quarantine_id),
    )
