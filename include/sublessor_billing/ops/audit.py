"""The record of quarantine actions (who, when, what): ``billing_ops_action``."""

from __future__ import annotations

from typing import Any

from sublessor_billing.db.tables import OPS_ACTION

REPLAY = "replay"
DISCARD = "discard"
UNKNOWN_ACTOR = "unknown"


def record_action(
    cur: Any, *, actor: str | None, action: str, quarantine_id: int, detail: str
) -> None:
    """Record one action, inside the transaction of the change it describes."""
    cur.execute(
        f"INSERT INTO {OPS_ACTION} (actor, action, quarantine_id, detail) VALUES (%s, %s, %s, %s)",
        ((actor or UNKNOWN_ACTOR)[:255], action, quarantine_id, detail[:1024]),
    )


def recent_actions(cur: Any, *, limit: int = 20) -> list[dict]:
    """The latest actions, newest first."""
    cur.execute(
        f"SELECT id, acted_at, actor, action, quarantine_id, detail FROM {OPS_ACTION}"
        " ORDER BY id DESC LIMIT %s",
        (limit,),
    )
    keys = ("id", "acted_at", "actor", "action", "quarantine_id", "detail")
    return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]
