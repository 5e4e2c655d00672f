"""The quarantine as operators see it: open rows newest first, grouped by reason, replay all of a reason.

Every change goes through ``calls.quarantine.replay`` / ``discard``, the code
path of the command, which records the action in ``billing_ops_action``.
Reasons are compared byte for byte (the column's collation would treat
``'VIP'`` and ``'vip'`` as one reason).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from sublessor_billing.calls.quarantine import (
    AlreadyResolved,
    QuarantineRowMissing,
    ReplayOutcome,
    StillInvalid,
    replay,
)
from sublessor_billing.calls.store import is_data_error
from sublessor_billing.db.tables import QUARANTINE
from sublessor_billing.db.transaction import read_only
from sublessor_billing.phone import mask_numbers, mask_phone

OPEN = "quarantined"
STATUSES = ("quarantined", "replayed", "discarded")
PREVIEW_CHARS = 160
# A preview is masked from the body's start up to this many bytes; a longer body
# cannot be parsed from it and has every run of 7+ digits masked instead.
MASK_READ_BYTES = 65536
MAX_REPLAY_BATCH = 1000


def open_count(cur: Any) -> int:
    cur.execute(f"SELECT COUNT(*) FROM {QUARANTINE} WHERE status = %s", (OPEN,))
    return int(cur.fetchone()[0])


def open_by_reason(cur: Any, *, limit: int = 20) -> list[dict]:
    """The reasons of the open rows, most frequent first, with their count and newest id."""
    cur.execute(
        f"SELECT CAST(reason AS BINARY) AS r, COUNT(*) AS n, MAX(id) FROM {QUARANTINE}"
        " WHERE status = %s GROUP BY r ORDER BY n DESC, MAX(id) DESC LIMIT %s",
        (OPEN, limit),
    )
    return [
        {"reason": bytes(r).decode("utf-8", "replace"), "count": int(n), "newest_id": int(newest)}
        for r, n, newest in cur.fetchall()
    ]


def list_rows(
    cur: Any, *, status: str | None = OPEN, before_id: int | None = None, limit: int = 50
) -> list[dict]:
    """Rows newest first (``before_id`` pages further back), with the start of each body."""
    where, params = [], []
    if status:
        where.append("status = %s")
        params.append(status)
    if before_id:
        where.append("id < %s")
        params.append(before_id)
    cur.execute(
        "SELECT id, status, seen_count, received_at, call_id, reason, routing_key,"
        f" LENGTH(raw_body), LEFT(raw_body, %s), resolved_at, resolution FROM {QUARANTINE}"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY id DESC LIMIT %s",
        [MASK_READ_BYTES, *params, limit],
    )
    keys = (
        "id", "status", "seen_count", "received_at", "call_id", "reason", "routing_key",
        "body_length", "body_start", "resolved_at", "resolution",
    )  # fmt: skip
    rows = []
    for row in cur.fetchall():
        item = dict(zip(keys, row, strict=True))
        item["body_start"] = masked_text(bytes(item["body_start"]))[:PREVIEW_CHARS]
        rows.append(item)
    return rows


def masked_text(raw: bytes) -> str:
    """A body as people without edit access see it: ``caller`` masked (keep the last 4 digits).

    A JSON object gets its ``caller`` masked; anything else (not JSON, not an
    object, cut short) gets every run of 7 or more digits masked.
    """
    try:
        parsed = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        return mask_numbers(raw.decode("utf-8", "replace"))
    if not isinstance(parsed, dict):
        return mask_numbers(raw.decode("utf-8", "replace"))
    if parsed.get("caller") is not None:
        parsed["caller"] = mask_phone(str(parsed["caller"]))
    return json.dumps(parsed, ensure_ascii=False)


def body(cur: Any, quarantine_id: int, *, unmasked: bool = False) -> dict | None:
    """One row's body: raw (text when UTF-8, and base64) for ``unmasked``, else masked text only."""
    cur.execute(f"SELECT raw_body FROM {QUARANTINE} WHERE id = %s", (quarantine_id,))
    row = cur.fetchone()
    if row is None:
        return None
    raw = bytes(row[0])
    if not unmasked:
        return {
            "id": quarantine_id,
            "length": len(raw),
            "utf8": True,
            "masked": True,
            "text": masked_text(raw),
            "base64": None,
        }
    try:
        text, utf8 = raw.decode("utf-8"), True
    except UnicodeDecodeError:
        text, utf8 = raw.decode("utf-8", "replace"), False
    return {
        "id": quarantine_id,
        "length": len(raw),
        "utf8": utf8,
        "masked": False,
        "text": text,
        "base64": base64.b64encode(raw).decode("ascii"),
    }


@dataclass
class ReasonReplay:
    reason: str
    replayed: list[ReplayOutcome] = field(default_factory=list)
    still_invalid: dict[int, str] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)  # resolved meanwhile by someone else
    failed: dict[int, str] = field(default_factory=dict)  # rolled back; still open; retry later
    remaining: int = 0

    def as_dict(self) -> dict:
        return {
            "reason": self.reason,
            "replayed": len(self.replayed),
            "logged": sum(1 for o in self.replayed if o.logged),
            "already_logged": sum(1 for o in self.replayed if not o.logged),
            "still_invalid": {str(k): v for k, v in self.still_invalid.items()},
            "skipped": self.skipped,
            "failed": {str(k): v for k, v in self.failed.items()},
            "remaining": self.remaining,
        }


def replay_all_of_reason(
    conn: Any, reason: str, *, actor: str, limit: int = MAX_REPLAY_BATCH
) -> ReasonReplay:
    """Replay the bodies as received of up to ``limit`` open rows with this exact reason.

    Each row is its own transaction (``calls.quarantine.replay``): a body that is
    still invalid (or that the call log refuses: a data error) stays quarantined
    and is reported; any other error on a row (a lock wait, a lost connection)
    rolls that row back, is reported in ``failed`` and the next rows go on; the
    others are logged.
    ``remaining`` counts the open rows of that reason left afterwards (those still
    invalid, and any beyond ``limit``).
    """
    result = ReasonReplay(reason)
    for quarantine_id in _open_ids_with_reason(conn, reason, limit):
        try:
            result.replayed.append(replay(conn, quarantine_id, actor=actor))
        except StillInvalid as exc:
            result.still_invalid[quarantine_id] = exc.reason
        except (AlreadyResolved, QuarantineRowMissing):
            result.skipped.append(quarantine_id)
        except Exception as exc:  # replay rolled the row back
            if is_data_error(exc):
                result.still_invalid[quarantine_id] = refused_reason(exc)
            else:
                result.failed[quarantine_id] = mask_numbers(f"{type(exc).__name__}: {exc}")[:500]
    with read_only(conn) as cur:
        cur.execute(
            f"SELECT COUNT(*) FROM {QUARANTINE} WHERE status = %s AND reason = CAST(%s AS BINARY)",
            (OPEN, reason),
        )
        result.remaining = int(cur.fetchone()[0])
    return result


def refused_reason(exc: BaseException) -> str:
    """Why the call log refused a replayed body (a data error), as intake words it."""
    return mask_numbers(f"the call log refused it: {exc}")[:500]


def _open_ids_with_reason(conn: Any, reason: str, limit: int) -> list[int]:
    with read_only(conn) as cur:
        cur.execute(
            f"SELECT id FROM {QUARANTINE} WHERE status = %s AND reason = CAST(%s AS BINARY)"
            " ORDER BY id LIMIT %s",
            (OPEN, reason, max(1, min(limit, MAX_REPLAY_BATCH))),
        )
        ids = [int(row[0]) for row in cur.fetchall()]
    return ids
