"""Export new and edited contracts to K3 Cloud, one recovery point per step.

Per page of contracts: plan each (pure; ``conflict`` rows are held for an operator)
-> one look-up (``k3/lookup.py``) for the numbers of every contract that may already
have a bill -> per contract, ``in_flight`` recoveries first: adopt the bill found
(unless another contract holds it or its lost create sent that number), commit the
attempt (``in_flight`` before a create, the FID before an update) -> Save -> commit
``exported`` or ``refused``. A crash anywhere leaves either nothing sent, or
``in_flight`` without FID and with the number sent, which the next run looks up
(with the current number) before it would create the bill again, and not before
the quiet period if K3 does not show it yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any, Protocol

from sublessor_billing.k3 import state as export_state
from sublessor_billing.k3.api import SaveResult, bill_no_key
from sublessor_billing.k3.lookup import look_up_bills
from sublessor_billing.k3.mapping import contract_to_model, model_digest
from sublessor_billing.k3.plan import (
    Action,
    ExportState,
    PriorExport,
    bill_candidates,
    claimed_by_others,
    create_may_still_land,
    lookup_numbers,
    plan_export,
    recovers_first,
)
from sublessor_billing.k3.report import ExportReport, Refusal

log = logging.getLogger(__name__)

# A create K3 may still be committing (our call timed out) is not sent again sooner.
DEFAULT_CREATE_QUIET_PERIOD_S = 600.0

_Planned = tuple[Mapping[str, Any], Action, str, list[str]]  # row, action, digest, look-ups


class K3Client(Protocol):
    def save(
        self, model: Mapping[str, Any], need_return_fields: Sequence[str] = ()
    ) -> SaveResult: ...

    def find_bills(self, bill_numbers: Iterable[str]) -> list[tuple[int, str]]: ...


def export_contracts(
    conn: Any,
    client: K3Client,
    field_map: Mapping[str, tuple[str, str]],
    *,
    page_size: int = 200,
    create_quiet_period_s: float = DEFAULT_CREATE_QUIET_PERIOD_S,
) -> ExportReport:
    """Export every contract that is new or edited since its last export; never create one twice.

    ``page_size`` contracts are read at a time and their bill numbers looked up in
    K3 with one query (at most two numbers per contract in its FilterString), split
    only when K3 forces it. Refusals and held conflicts are recorded and reported,
    not raised; a K3 that does not answer usably (network, HTTP 5xx, an unreadable
    answer) raises at once, leaving what was done committed. A create
    sent less than ``create_quiet_period_s`` ago whose bill K3 does not show is not
    sent again: it waits for a later run (reported under ``waiting``).
    """
    report = ExportReport()
    with export_state.export_lock(conn):
        after_id = 0
        while rows := export_state.fetch_candidates(conn, after_id, page_size):
            after_id = rows[-1]["id"]
            _export_page(conn, client, field_map, rows, report, create_quiet_period_s)
    log.info("K3 contract export: %s", report.counts())
    return report


def _export_page(
    conn: Any,
    client: K3Client,
    field_map: Mapping[str, tuple[str, str]],
    rows: Sequence[Mapping[str, Any]],
    report: ExportReport,
    quiet_period_s: float,
) -> None:
    planned: list[_Planned] = []
    for row in rows:
        prior = PriorExport.from_row(row)
        if prior is not None and prior.state == ExportState.CONFLICT:
            _hold(report, row)
            continue
        try:
            model = contract_to_model(row, field_map)
        except ValueError as exc:
            _refuse(conn, report, row, str(exc), sent=False)  # one bad contract holds up no other
            continue
        digest = model_digest(model)
        action = plan_export(row["updated_datetime"], digest, prior)
        if action is Action.UNCHANGED:
            report.unchanged += 1
            continue
        numbers = lookup_numbers(action, str(row["contract_no"]), row.get("sent_contract_no"))
        planned.append((row, action, digest, numbers))
    # The bill a lost create made goes to the contract that sent it before anyone adopts by number.
    planned.sort(key=lambda p: not recovers_first(p[1], PriorExport.from_row(p[0])))
    lookup = look_up_bills(client, [number for *_, numbers in planned for number in numbers])
    found = lookup.found
    senders = export_state.lost_create_senders(
        conn, [n for *_, numbers in planned for n in numbers if bill_no_key(n) in found]
    )
    for row, action, digest, numbers in planned:
        if rejected := [n for n in numbers if lookup.is_rejected(n)]:
            message = (
                f"K3 rejects the look-up of bill number {', '.join(map(repr, rejected))}: "
                f"{lookup.rejected[bill_no_key(rejected[0])]}. Nothing was sent (a create without "
                "a look-up could duplicate its bill); correct the number in CRM or ask K3 "
                "support why the query fails. The next run retries"
            )
            _refuse(conn, report, row, message, sent=False)
            continue
        if action is Action.UPDATE:
            fid = row["k3_id"]
        else:
            fid = _adopt(conn, row, action, bill_candidates(numbers, found), senders)
            prior = PriorExport.from_row(row)
            if fid is None and create_may_still_land(prior, quiet_period_s):
                _wait(report, row, prior, quiet_period_s)
                continue
        _save(conn, client, field_map, row, fid, digest, report)


def _hold(report: ExportReport, row: Mapping[str, Any]) -> None:
    message = row.get("last_error") or "it shared a K3 bill with another contract"
    report.conflicts.append(Refusal(int(row["id"]), str(row["contract_no"]), message))
    log.error(
        "K3 export: contract %s (id %s) held until an operator resolves it: %s",
        row["contract_no"],
        row["id"],
        message,
    )


def _wait(
    report: ExportReport, row: Mapping[str, Any], prior: PriorExport, quiet_period_s: float
) -> None:
    message = (
        f"its create was sent {prior.age_s:.0f}s ago and K3 shows no bill yet; a slow K3 may "
        f"still commit it, so it is not sent again before {quiet_period_s:.0f}s have passed "
        "(a later run looks it up again)"
    )
    report.waiting.append(Refusal(int(row["id"]), str(row["contract_no"]), message))
    log.warning("K3 export: contract %s (id %s): %s", row["contract_no"], row["id"], message)


def _adopt(
    conn: Any,
    row: Mapping[str, Any],
    action: Action,
    candidates: Sequence[tuple[int, str]],
    senders: Mapping[str, Set[int]],
) -> int | None:
    """The FID of the bill K3 already holds for this contract, or None when there is none."""
    contract_id, contract_no = int(row["id"]), str(row["contract_no"])
    held = export_state.bills_held_by_others(conn, [fid for fid, _ in candidates], contract_id)
    free = []
    for fid, number in candidates:
        claimants = claimed_by_others(contract_id, number, senders)
        if fid in held or claimants:
            log.warning(
                "K3 bill FID %s (found under %r for contract %s, id %s) is not adopted: %s",
                fid,
                number,
                contract_no,
                contract_id,
                f"contract id {held[fid]} holds it"
                if fid in held
                else f"the lost create of contract id(s) {sorted(claimants)} sent that number",
            )
        else:
            free.append(fid)
    if not free:
        return None
    if len(free) > 1:
        log.warning(
            "K3 holds %d bills for contract %s (id %s), FIDs %s: adopting %s",
            len(free),
            contract_no,
            contract_id,
            free,
            free[0],
        )
    log.log(
        logging.WARNING if action is Action.RECOVER else logging.INFO,
        "Contract %s (id %s) already has K3 bill FID %s (numbers looked up: %s; %s): "
        "updating it instead of creating another",
        contract_no,
        contract_id,
        free[0],
        ", ".join(dict.fromkeys(number for _, number in candidates)),
        "an earlier unfinished create" if action is Action.RECOVER else "made before this export",
    )
    return free[0]


def _save(
    conn: Any,
    client: K3Client,
    field_map: Mapping[str, tuple[str, str]],
    row: Mapping[str, Any],
    fid: int | None,
    digest: str,
    report: ExportReport,
) -> None:
    contract_id, contract_no = int(row["id"]), str(row["contract_no"])
    export_state.record_attempt(conn, contract_id, contract_no, k3_id=fid)
    result = client.save(contract_to_model(row, field_map, fid), ["FID", "FBillNo"])
    if not result.success:
        _refuse(conn, report, row, result.message(), sent=True)
        return
    export_state.mark_exported(
        conn,
        contract_id,
        contract_no,
        k3_id=result.fid or fid,
        k3_number=result.number,
        version=row["updated_datetime"],
        digest=digest,
    )
    if fid is None:
        report.created += 1
    else:
        report.updated += 1
    log.info(
        "Contract %s (id %s) %s in K3 as FID %s",
        contract_no,
        contract_id,
        "created" if fid is None else "updated",
        result.fid or fid,
    )


def _refuse(
    conn: Any, report: ExportReport, row: Mapping[str, Any], message: str, *, sent: bool
) -> None:
    """Record and report a contract not exported; ``sent``: K3 refused a Save (else nothing went)."""
    contract_id, contract_no = int(row["id"]), str(row["contract_no"])
    if sent:
        export_state.mark_refused(conn, contract_id, message)
    else:
        export_state.mark_not_sent(conn, contract_id, contract_no, message)
    report.refusals.append(Refusal(contract_id, contract_no, message))
    log.error("K3 export refused contract %s (id %s): %s", contract_no, contract_id, message)
