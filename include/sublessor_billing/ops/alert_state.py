"""The state of each alert, a row of ``billing_alert``, and the notices its changes make.

A row is locked while its alert is evaluated (``lock_row``). A condition alert
(``condition``) notifies when it starts firing, again every ``repeat_minutes``
while it fires, and once when it is resolved. A notice is recorded as sent
(``mark_notified``) only once it was sent, in the evaluation's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sublessor_billing.db.tables import ALERT

FIRING = "firing"
RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertSettings:
    pending_minutes: int
    no_success_minutes: int
    repeat_minutes: int


@dataclass(frozen=True)
class Notice:
    alert: str
    state: str
    summary: str
    details: dict = field(default_factory=dict)
    key: str | None = None  # its billing_alert row and dedup_key, when not the alert's name

    @property
    def row(self) -> str:
        return self.key or self.alert

    def payload(self) -> dict:
        return {
            "alert": self.alert,
            "state": self.state,
            "dedup_key": self.row,
            "summary": self.summary,
            **self.details,
        }


@dataclass
class AlertRow:
    name: str
    active: bool
    since: datetime | None
    notified_at: datetime | None
    value: int | None


def mark_notified(cur: Any, notice: Notice) -> None:
    """Record that ``notice`` was sent (only then: an alert not sent stays due)."""
    cur.execute(f"UPDATE {ALERT} SET notified_at = NOW(3) WHERE name = %s", (notice.row,))


def active_alerts(cur: Any) -> list[dict]:
    """The alerts firing now (for the page)."""
    cur.execute(
        f"SELECT name, since, notified_at, detail FROM {ALERT} WHERE active = 1 ORDER BY name"
    )
    keys = ("name", "since", "notified_at", "detail")
    return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


def condition(
    cur: Any,
    row: AlertRow,
    now: datetime,
    settings: AlertSettings,
    firing: bool,
    summary: str,
    details: dict,
    *,
    keep_since: bool = False,
) -> list[Notice]:
    """Update a condition alert's row (firing or not); return the notice due, if any.

    ``keep_since``: ``since`` is the watched value's clock, not when firing started.
    """
    repeat = timedelta(minutes=settings.repeat_minutes)
    if firing:
        due = not row.active or row.notified_at is None or now - row.notified_at >= repeat
        since = row.since if (keep_since or row.active) else now
        cur.execute(
            f"UPDATE {ALERT} SET active = 1, since = %s, detail = %s WHERE name = %s",
            (since, summary[:1024], row.name),
        )
        return [Notice(row.name, FIRING, summary, details)] if due else []
    if row.active:
        cur.execute(
            f"UPDATE {ALERT} SET active = 0, detail = %s WHERE name = %s",
            (summary[:1024], row.name),
        )
        return [Notice(row.name, RESOLVED, summary, details)]
    return []


def lock_row(cur: Any, name: str) -> AlertRow:
    """Lock the alert's row (created on first use) and return its state."""
    cur.execute(f"INSERT IGNORE INTO {ALERT} (name) VALUES (%s)", (name,))
    cur.execute(
        f"SELECT active, since, notified_at, value FROM {ALERT} WHERE name = %s FOR UPDATE",
        (name,),
    )
    active, since, notified_at, value = cur.fetchone()
    return AlertRow(name, bool(active), since, notified_at, None if value is None else int(value))
