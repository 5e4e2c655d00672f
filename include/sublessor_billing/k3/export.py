"""Export new and edited contracts to K3 Cloud, one recovery point per step.

Per contract: plan (pure) -> [look the bill number up] -> commit the attempt
(``in_flight`` before a create) -> Save -> commit ``exported`` or ``refused``.
A crash anywhere leaves either nothing sent, or ``in_flight`` without FID, which
the next run resolves by looking the bill up before it would create it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sublessor_billing.k3 import state as export_state
from sublessor_billing.k3.api import SaveResult
from sublessor_billing.k3.mapping import contract_to_model, model_digest
from sublessor_billing.k3.plan import Action, ExportReport, ExportState, Refusal, plan_export

log = logging.getLogger(__name__)


class K3Client(Protocol):
    def save(
        self, model: Mapping[str, Any], need_return_fields: Sequence[str] = ()
    ) -> SaveResult: ...

    def find_bill(self, bill_no: str) -> int | None: ...


def export_contracts(
    conn: Any,
    client: K3Client,
    field_map: Mapping[str, tuple[str, str]],
    *,
    page_size: int = 200,
) -> ExportReport:
    """Export every contract that is new or edited since its last export; never create one twice.

    Refusals are recorded and reported, not raised; a K3 that does not answer
    (network, HTTP 5xx) raises at once, leaving what was done committed.
    """
    report = ExportReport()
    with export_state.export_lock(conn):
        after_id = 0
        while True:
            rows = export_state.fetch_candidates(conn, after_id, page_size)
            if not rows:
                break
            for row in rows:
                after_id = row["id"]
                _export_one(conn, client, field_map, row, report)
    log.info("K3 contract export: %s", report.counts())
    return report


def _export_one(
    conn: Any,
    client: K3Client,
    field_map: Mapping[str, tuple[str, str]],
    row: Mapping[str, Any],
    report: ExportReport,
) -> None:
    contract_id, contract_no = int(row["id"]), str(row["contract_no"])
    try:
        model = contract_to_model(row, field_map)
    except ValueError as exc:
        # Bad data in one contract must not hold up the others.
        export_state.record_attempt(conn, contract_id, contract_no, in_flight=False)
        _refuse(conn, report, contract_id, contract_no, str(exc))
        return
    digest = model_digest(model)
    action = plan_export(row["updated_datetime"], digest, ExportState.from_row(row))
    if action is Action.UNCHANGED:
        report.unchanged += 1
        return

    fid = row["k3_id"]
    if action is Action.RECOVER:
        fid = client.find_bill(contract_no)
        if fid is not None:
            log.warning(
                "Contract %s (id %s) already has K3 bill FID %s from an earlier unfinished "
                "attempt: updating it instead of creating another",
                contract_no,
                contract_id,
                fid,
            )
    creating = fid is None
    export_state.record_attempt(conn, contract_id, contract_no, in_flight=creating)
    result = client.save(contract_to_model(row, field_map, fid), ["FID", "FBillNo"])
    if not result.success:
        _refuse(conn, report, contract_id, contract_no, result.message())
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
    if creating:
        report.created += 1
    else:
        report.updated += 1
    log.info(
        "Contract %s (id %s) %s in K3 as FID %s",
        contract_no,
        contract_id,
        "created" if creating else "updated",
        result.fid or fid,
    )


def _refuse(
    conn: Any, report: ExportReport, contract_id: int, contract_no: str, message: str
) -> None:
    export_state.mark_refused(conn, contract_id, message)
    report.refusals.append(Refusal(contract_id, contract_no, message))
    log.error("K3 refused contract %s (id %s): %s", contract_no, contract_id, message)
