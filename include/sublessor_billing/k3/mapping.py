"""How a ``sublessor_contract`` row becomes a K3 Cloud ``Model`` (the one place to change it).

The mapping is a dict ``{K3 field key: "column" or "column|transform"}``. It is
plain data so that it can be overridden without a deploy: through the operator's
``field_map`` argument, or the Airflow Variable ``k3_contract_field_map`` (JSON).
Unknown columns or transforms are refused up front, before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

FIELD_MAP_VARIABLE = "k3_contract_field_map"

# Columns of sublessor_contract a mapping may read. ``balance`` is deliberately
# absent: accounting lowers it without touching updated_datetime, so it is not
# a contract edit and must never reach K3 (nor make a bill look changed).
CONTRACT_COLUMNS = (
    "id",
    "sublessor_id",
    "contract_no",
    "total_amount",
    "start_date",
    "end_date",
    "status",
    "signed_at",
)

DEFAULT_FIELD_MAP: dict[str, str] = {
    "FBillNo": "contract_no",
    "FCustomerID": "sublessor_id|number_ref",
    "FContractAmount": "total_amount|yuan",
    "FStartDate": "start_date|date",
    "FEndDate": "end_date|date",
    "FDate": "signed_at|datetime",
    "FCancelStatus": "status|cancel_status",
}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int(value: Any) -> int:
    return int(value)


def _yuan(value: Any) -> float:
    """Fen (integer) to yuan with two decimals, exact for every integer fen amount."""
    return float(Decimal(int(value)).scaleb(-2))


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _datetime(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return _date(value)


def _number_ref(value: Any) -> dict[str, str]:
    """K3 base-data references (customer, ...) are sent by their number."""
    return {"FNumber": _text(value)}


def _cancel_status(value: Any) -> str:
    """K3's cancel flag: ``A`` = in force, ``B`` = cancelled (contract status 0)."""
    return "A" if int(value) == 1 else "B"


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "int": _int,
    "yuan": _yuan,
    "date": _date,
    "datetime": _datetime,
    "number_ref": _number_ref,
    "cancel_status": _cancel_status,
}


def parse_field_map(raw: Mapping[str, str] | str | None) -> dict[str, tuple[str, str]]:
    """Validate a mapping (dict or JSON text; None = the default) into ``{field: (column, transform)}``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = DEFAULT_FIELD_MAP
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(
                f"K3 field map (Variable {FIELD_MAP_VARIABLE!r}) is not valid JSON: {exc}"
            ) from None
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"K3 field map must be a non-empty JSON object; got {raw!r}")
    parsed: dict[str, tuple[str, str]] = {}
    for field, spec in raw.items():
        column, _, transform = str(spec).partition("|")
        column, transform = column.strip(), (transform.strip() or "text")
        if field == "FID":
            raise ValueError("K3 field map must not map FID: the export sets it from its state")
        if column not in CONTRACT_COLUMNS:
            raise ValueError(
                f"K3 field map: {field!r} reads unknown column {column!r}; "
                f"allowed: {', '.join(CONTRACT_COLUMNS)}"
            )
        if transform not in TRANSFORMS:
            raise ValueError(
                f"K3 field map: {field!r} uses unknown transform {transform!r}; "
                f"allowed: {', '.join(sorted(TRANSFORMS))}"
            )
        parsed[str(field)] = (column, transform)
    if parsed.get("FBillNo") != ("contract_no", "text"):
        raise ValueError(
            "K3 field map must map FBillNo to contract_no as text: duplicate prevention "
            "looks bills up by their number"
        )
    return parsed


def contract_to_model(
    contract: Mapping[str, Any], field_map: Mapping[str, tuple[str, str]], fid: int | None = None
) -> dict[str, Any]:
    """Build the K3 ``Model`` of one contract; with ``fid`` it updates that bill."""
    model: dict[str, Any] = {}
    if fid is not None:
        model["FID"] = int(fid)
    for field, (column, transform) in field_map.items():
        try:
            model[field] = TRANSFORMS[transform](contract[column])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"Contract {contract.get('contract_no')!r} (id {contract.get('id')}): "
                f"cannot map column {column!r} to K3 field {field!r} with {transform!r}: {exc!r}"
            ) from None
    return model


def model_digest(model: Mapping[str, Any]) -> str:
    """A stable fingerprint of what was sent (without FID), to spot same-second edits."""
    body = {k: v for k, v in model.items() if k != "FID"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
