"""Decide, per contract, what the K3 export must do: pure functions, no I/O.

State machine of ``k3_contract_export_state.state`` (see docs/k3_contract_export.md):
no row or ``never_sent`` -> (looked up, nothing found) ``in_flight`` (committed
before a create is sent) -> ``exported`` or ``refused``;
``exported`` -> (contract edited) update via FID -> ``exported`` or ``refused``;
``conflict`` (set by migration 069: the row shared its bill with another contract)
-> nothing is sent until an operator resolves it;
a refusal before anything is sent (the mapping, the look-up) changes no state but
``last_error``, and leaves a new contract ``never_sent``.
Nothing is created without a look-up first: a contract without a row may have a
bill the legacy exporter made (same number), and an ``in_flight`` or ``refused``
row without ``k3_id`` may hide a bill K3 created for an answer we never recorded,
under the number that create sent (the row's ``contract_no``), which CRM may have
changed since.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from sublessor_billing.k3.api import bill_no_key


class ExportState(enum.StrEnum):
    """``k3_contract_export_state.state``: where the export of one contract got to."""

    IN_FLIGHT = "in_flight"  # committed before a create is sent; its answer not recorded yet
    EXPORTED = "exported"
    REFUSED = "refused"  # K3 refused the Save; retried every run
    NEVER_SENT = "never_sent"  # refused before anything was sent: its contract_no claims nothing
    CONFLICT = "conflict"  # shared a K3 bill with another contract: held until an operator decides


class Action(enum.StrEnum):
    CREATE = "create"  # never sent by us: look the number up (legacy bill), adopt or create
    RECOVER = "recover"  # maybe created by us: look up the numbers sent and current first
    UPDATE = "update"  # K3 has it (known FID): Save with FID
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class PriorExport:
    """A contract's ``k3_contract_export_state`` row, as the plan reads it."""

    state: ExportState
    k3_id: int | None
    exported_version: dt.datetime | None
    exported_digest: str | None = None
    age_s: float | None = None  # seconds since the row last changed (for in_flight: the create)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PriorExport | None:
        if row.get("state") is None:
            return None
        return cls(
            ExportState(row["state"]),
            row.get("k3_id"),
            row.get("exported_version"),
            row.get("exported_digest"),
            row.get("state_age_s"),
        )


def plan_export(version: dt.datetime, digest: str, state: PriorExport | None) -> Action:
    """What to do with a contract at ``version`` (its updated_datetime) whose Model hashes to ``digest``."""
    if state is None or (state.state == ExportState.NEVER_SENT and state.k3_id is None):
        return Action.CREATE
    if state.k3_id is None:
        return Action.RECOVER
    if state.state != ExportState.EXPORTED or state.exported_version is None:
        return Action.UPDATE
    if version > state.exported_version:
        return Action.UPDATE
    if version == state.exported_version and state.exported_digest not in (None, digest):
        return Action.UPDATE  # edited again within the same second
    return Action.UNCHANGED


def lookup_numbers(action: Action, contract_no: str, sent_contract_no: str | None) -> list[str]:
    """The bill numbers to look up before a Save without FID, the likeliest owner's first.

    RECOVER: the number our last create sent (the bill it may have made, even if
    CRM renamed the contract since), then the current one; CREATE: the current
    number (a bill the legacy exporter made). UPDATE and UNCHANGED: none.
    """
    if action is Action.CREATE:
        return [contract_no]
    if action is not Action.RECOVER:
        return []
    unique: dict[str, str] = {}
    for number in (sent_contract_no, contract_no):
        if number is not None:
            unique.setdefault(bill_no_key(number), number)
    return list(unique.values())


def bill_candidates(
    numbers: Sequence[str], found: Mapping[str, Sequence[int]]
) -> list[tuple[int, str]]:
    """``(FID, number)`` K3 holds under ``numbers`` (``found`` keyed by ``bill_no_key``):
    by number, oldest first."""
    candidates: list[tuple[int, str]] = []
    for number in numbers:
        for fid in sorted(found.get(bill_no_key(number), ())):
            if all(fid != seen for seen, _ in candidates):
                candidates.append((fid, number))
    return candidates


def claimed_by_others(contract_id: int, number: str, senders: Mapping[str, Set[int]]) -> Set[int]:
    """Contracts whose lost create may have made the bill found under ``number``.

    ``senders`` maps ``bill_no_key`` to the contracts that sent that number in a
    create whose answer never came (``in_flight``, no FID). Such a bill is theirs
    to adopt: another contract now carrying that number must not take it (empty
    when ``contract_id`` is itself one of the senders).
    """
    sent_by = senders.get(bill_no_key(number), frozenset())
    return frozenset() if contract_id in sent_by else frozenset(sent_by)


def create_may_still_land(state: PriorExport | None, quiet_period_s: float) -> bool:
    """Whether a create sent less than ``quiet_period_s`` ago may still be committed by a slow K3.

    Only for an ``in_flight`` row without FID whose bill the look-up did not find:
    K3 may have been committing it when our call timed out and show it only later,
    so creating it again now could make a twin. A later run looks it up again.
    """
    return (
        state is not None
        and state.state == ExportState.IN_FLIGHT
        and state.k3_id is None
        and state.age_s is not None
        and state.age_s < quiet_period_s
    )


def recovers_first(action: Action, state: PriorExport | None) -> bool:
    """Lost creates (``in_flight``) adopt the bills they made before anyone adopts by number."""
    return action is Action.RECOVER and state is not None and state.state == ExportState.IN_FLIGHT
