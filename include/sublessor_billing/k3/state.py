"""SQL of ``k3_contract_export_state``: the export's recovery points (one commit each)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from sublessor_billing.db.named_lock import named_lock
from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import CONTRACT, K3_EXPORT_CONFLICT, K3_EXPORT_STATE
from sublessor_billing.db.transaction import transaction
from sublessor_billing.k3.api import bill_no_key
from sublessor_billing.k3.mapping import CONTRACT_COLUMNS
from sublessor_billing.k3.plan import ExportState

_LOCK_JOB = "k3_contract_export"

_CANDIDATES_SQL = (
    "SELECT "
    + ", ".join(f"c.{col}" for col in CONTRACT_COLUMNS)
    + ", c.updated_datetime, s.state, s.k3_id, s.exported_version, s.exported_digest,"
    " s.contract_no AS sent_contract_no, s.last_error,"
    " TIMESTAMPDIFF(SECOND, s.updated_at, NOW(3)) AS state_age_s"
    f" FROM {CONTRACT} c"
    f" LEFT JOIN {K3_EXPORT_STATE} s ON s.contract_id = c.id"
    " WHERE c.id > %s AND (s.contract_id IS NULL OR s.state <> %s"
    "   OR s.exported_version IS NULL OR c.updated_datetime >= s.exported_version)"
    " ORDER BY c.id LIMIT %s"
)


def fetch_candidates(conn: Any, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Contracts after ``after_id`` that may need exporting (never exported, unfinished, or edited)."""
    with transaction(conn) as cur:
        cur.execute(_CANDIDATES_SQL, (after_id, ExportState.EXPORTED, limit))
        names = [d[0] for d in cur.description]
        # The commit ends the snapshot: the next page sees edits made meanwhile.
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def record_attempt(conn: Any, contract_id: int, contract_no: str, *, k3_id: int | None) -> None:
    """Commit that a Save of ``contract_no`` is about to be sent: a create (``k3_id`` None) or an update.

    A create leaves the row ``in_flight`` without ``k3_id``, its ``contract_no`` the
    number sent: the next run looks that number up if the answer never arrives,
    whatever CRM renamed the contract to meanwhile. An update records the bill's
    FID first, so a bill just adopted stays adopted even if K3 refuses the update.
    """
    with transaction(conn) as cur:
        cur.execute(
            f"INSERT INTO {K3_EXPORT_STATE} (contract_id, contract_no, k3_id, state, attempts)"
            " VALUES (%s, %s, %s, %s, 1)"
            " ON DUPLICATE KEY UPDATE attempts = attempts + 1, contract_no = VALUES(contract_no),"
            "   state = IF(VALUES(k3_id) IS NULL OR state = %s, VALUES(state), state),"
            "   k3_id = VALUES(k3_id)",
            (contract_id, contract_no, k3_id, ExportState.IN_FLIGHT, ExportState.NEVER_SENT),
        )


def bills_held_by_others(conn: Any, fids: Sequence[int], contract_id: int) -> dict[int, int]:
    """``{FID: contract id}`` for those of ``fids`` that other contracts hold.

    A bill set aside with its contracts (``k3_contract_export_conflict``, migration
    069) stays held while they await an operator's decision: nobody else adopts it.
    """
    if not fids:
        return {}
    in_fids = marks(fids)
    with transaction(conn) as cur:
        cur.execute(
            f"SELECT k3_id, contract_id FROM {K3_EXPORT_STATE}"
            f" WHERE k3_id IN ({in_fids}) AND contract_id <> %s"
            f" UNION ALL SELECT c.k3_id, c.contract_id FROM {K3_EXPORT_CONFLICT} c"
            f" JOIN {K3_EXPORT_STATE} s ON s.contract_id = c.contract_id"
            f" WHERE c.k3_id IN ({in_fids}) AND c.contract_id <> %s AND s.state = %s",
            (*fids, contract_id, *fids, contract_id, ExportState.CONFLICT),
        )
        return {int(fid): int(other) for fid, other in cur.fetchall()}


def lost_create_senders(conn: Any, numbers: Sequence[str]) -> dict[str, set[int]]:
    """``{bill_no_key: contract ids}`` of ``in_flight`` rows without FID that sent one of ``numbers``."""
    if not numbers:
        return {}
    with transaction(conn) as cur:
        cur.execute(
            f"SELECT contract_id, contract_no FROM {K3_EXPORT_STATE}"
            " WHERE state = %s AND k3_id IS NULL"
            f" AND contract_no IN ({marks(numbers)})",
            (ExportState.IN_FLIGHT, *numbers),
        )
        rows = cur.fetchall()
    senders: dict[str, set[int]] = {}
    for contract_id, contract_no in rows:
        senders.setdefault(bill_no_key(contract_no), set()).add(int(contract_id))
    return senders


def mark_exported(
    conn: Any,
    contract_id: int,
    contract_no: str,
    *,
    k3_id: int,
    k3_number: str | None,
    version: Any,
    digest: str,
) -> None:
    with transaction(conn) as cur:
        cur.execute(
            f"UPDATE {K3_EXPORT_STATE} SET state = %s, k3_id = %s, k3_number = %s,"
            " exported_version = %s, exported_digest = %s, contract_no = %s, last_error = NULL,"
            " attempts = 0 WHERE contract_id = %s",
            (
                ExportState.EXPORTED,
                k3_id,
                k3_number or contract_no,
                version,
                digest,
                contract_no,
                contract_id,
            ),  # fmt: skip
        )
        if cur.rowcount != 1:
            raise RuntimeError(
                f"{K3_EXPORT_STATE} has no row for contract {contract_no} (id {contract_id}) "
                "although an attempt was recorded; was the table edited during the run?"
            )


def mark_refused(conn: Any, contract_id: int, message: str) -> None:
    """Commit K3's refusal of a Save; the row keeps its ``contract_no`` and ``k3_id`` (what was sent)."""
    with transaction(conn) as cur:
        cur.execute(
            f"UPDATE {K3_EXPORT_STATE} SET state = %s, last_error = %s WHERE contract_id = %s",
            (ExportState.REFUSED, message[:60000], contract_id),
        )


def mark_not_sent(conn: Any, contract_id: int, contract_no: str, message: str) -> None:
    """Commit a refusal before anything was sent: only ``last_error`` changes.

    A new contract gets a ``never_sent`` row (its number claims nothing: it is looked
    up like a new contract); an existing row keeps its state, so an ``in_flight``
    row still claims the bill its lost create may have made.
    """
    with transaction(conn) as cur:
        cur.execute(
            f"INSERT INTO {K3_EXPORT_STATE} (contract_id, contract_no, state, last_error)"
            " VALUES (%s, %s, %s, %s)"
            " ON DUPLICATE KEY UPDATE last_error = VALUES(last_error)",
            (contract_id, contract_no, ExportState.NEVER_SENT, message[:60000]),
        )


def export_lock(conn: Any, timeout_s: int = 10) -> contextlib.AbstractContextManager[str]:
    """Hold a named lock so that two exports (e.g. a manual run) never create the same bill."""
    return named_lock(conn, _LOCK_JOB, timeout_s)
