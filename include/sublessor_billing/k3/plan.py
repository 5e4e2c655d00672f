"""Decide, per contract, what the K3 export must do: pure functions, no I/O.

State machine of ``k3_contract_export_state.state`` (see docs/k3_contract_export.md):
no row -> ``in_flight`` (committed before a create is sent) -> ``exported`` or ``refused``;
``exported`` -> (contract edited) update via FID -> ``exported`` or ``refused``.
A row without ``k3_id`` may hide a bill K3 created for an answer we never recorded,
so such a contract is looked up by its bill number before anything is created.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

IN_FLIGHT = "in_flight"
EXPORTED = "exported"
REFUSED = "refused"


class Action(enum.StrEnum):
    CREATE = "create"  # never sent: record in_flight, then Save without FID
    RECOVER = "recover"  # maybe created before: look the bill number up, then update or create
    UPDATE = "update"  # K3 has it (known FID): Save with FID
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ExportState:
    state: str
    k3_id: int | None
    exported_version: dt.datetime | None
    exported_digest: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ExportState | None:
        if row.get("state") is None:
            return None
        return cls(
            row["state"], row.get("k3_id"), row.get("exported_version"), row.get("exported_digest")
        )


def plan_export(version: dt.datetime, digest: str, state: ExportState | None) -> Action:
    """What to do with a contract at ``version`` (its updated_datetime) whose Model hashes to ``digest``."""
    if state is None:
        return Action.CREATE
    if state.k3_id is None:
        return Action.RECOVER
    if state.state != EXPORTED or state.exported_version is None:
        return Action.UPDATE
    if version > state.exported_version:
        return Action.UPDATE
    if version == state.exported_version and state.exported_digest not in (None, digest):
        return Action.UPDATE  # edited again within the same second
    return Action.UNCHANGED


@dataclass(frozen=True)
class Refusal:
    contract_id: int
    contract_no: str
    message: str


@dataclass
class ExportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def refused(self) -> int:
        return len(self.refusals)

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": self.refused,
        }

    def failure_message(self, limit: int = 20) -> str | None:
        """Why the run must fail (None when nothing was refused)."""
        if not self.refusals:
            return None
        lines = [
            f"contract {r.contract_no} (id {r.contract_id}): {r.message}"
            for r in self.refusals[:limit]
        ]
        if self.refused > limit:
            lines.append(f"... and {self.refused - limit} more")
        return (
            f"K3 Cloud refused {self.refused} contract(s); the others were exported "
            f"({self.counts()}). Fix the data in CRM or K3; the next run retries them:\n  "
            + "\n  ".join(lines)
        )
