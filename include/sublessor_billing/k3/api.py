"""The K3 Cloud WebAPI wire format (contracts/k3-cloud.md): paths, bodies, answers.

Shared by the hook and the sandbox server so that both speak exactly one dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SERVICE = "Kingdee.BOS.WebApi.ServicesStub."
LOGIN_PATH = SERVICE + "AuthService.ValidateUser.common.kdsvc"
SAVE_PATH = SERVICE + "DynamicFormService.Save.common.kdsvc"
QUERY_PATH = SERVICE + "DynamicFormService.ExecuteBillQuery.common.kdsvc"
SESSION_COOKIE = "kdservice-sessionid"
LOGIN_OK = 1
SESSION_EXPIRED_CODE = 1
# Queries page by FID so that StartRow/Limit pages neither skip nor repeat a bill.
QUERY_ORDER = "FID ASC"


@dataclass(frozen=True)
class SaveResult:
    """What K3 answered to one Save."""

    success: bool
    fid: int | None = None
    number: str | None = None
    errors: tuple[str, ...] = field(default_factory=tuple)
    session_expired: bool = False

    def message(self) -> str:
        return "; ".join(self.errors) or "K3 refused the bill without a message"


def login_body(acct_id: str, username: str, password: str, lcid: int) -> dict[str, Any]:
    return {"acctID": acct_id, "username": username, "password": password, "lcid": lcid}


def save_body(
    form_id: str, model: Mapping[str, Any], need_return_fields: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "formid": form_id,
        "data": {
            "Model": dict(model),
            "NeedReturnFields": list(need_return_fields),
            "IsAutoSubmitAndAudit": False,
        },
    }


def query_body(
    form_id: str, field_keys: Sequence[str], filter_string: str, *, start_row: int, limit: int
) -> dict[str, Any]:
    return {
        "data": {
            "FormId": form_id,
            "FieldKeys": ",".join(field_keys),
            "FilterString": filter_string,
            "OrderString": QUERY_ORDER,
            "TopRowCount": 0,
            "StartRow": start_row,
            "Limit": limit,
        }
    }


def sql_literal(text: str) -> str:
    """Quote a value for a K3 FilterString (single quotes doubled)."""
    return "'" + str(text).replace("'", "''") + "'"


def bill_no_key(bill_no: str) -> str:
    """What K3 compares of a bill number: case and trailing spaces ignored (SQL Server collation)."""
    return str(bill_no).rstrip(" ").casefold()


def bill_number_filter(bill_numbers: Iterable[str]) -> str:
    """``FBillNo='x'`` or ``FBillNo IN ('x','y')``: every bill K3 holds under these numbers."""
    numbers = [sql_literal(n) for n in bill_numbers]
    if not numbers:
        raise ValueError("bill_number_filter needs at least one bill number")
    if len(numbers) == 1:
        return f"FBillNo={numbers[0]}"
    return f"FBillNo IN ({','.join(numbers)})"


def _status(answer: Any) -> Mapping[str, Any]:
    if isinstance(answer, Mapping):
        result = answer.get("Result")
        if isinstance(result, Mapping) and isinstance(result.get("ResponseStatus"), Mapping):
            return result["ResponseStatus"]
    return {}


def is_session_expired(answer: Any) -> bool:
    """Save answers a dict, ExecuteBillQuery a ``[[{...}]]``: both carry MsgCode 1."""
    while isinstance(answer, list) and answer:
        answer = answer[0]
    status = _status(answer)
    return status.get("IsSuccess") is False and status.get("MsgCode") == SESSION_EXPIRED_CODE


def error_messages(status: Mapping[str, Any]) -> tuple[str, ...]:
    found = []
    for error in status.get("Errors") or []:
        if isinstance(error, Mapping):
            name, message = error.get("FieldName"), error.get("Message")
            found.append(f"{name}: {message}" if name else str(message))
        else:
            found.append(str(error))
    return tuple(found)


def parse_save(answer: Any) -> SaveResult:
    """Read a Save answer; anything that is not a clear success is a refusal."""
    status = _status(answer)
    if not status:
        return SaveResult(False, errors=(f"unexpected Save answer: {str(answer)[:300]}",))
    if is_session_expired(answer):
        return SaveResult(False, errors=error_messages(status), session_expired=True)
    if status.get("IsSuccess") is not True:
        return SaveResult(False, errors=error_messages(status))
    entities = status.get("SuccessEntitys") or [{}]
    result = answer["Result"]
    fid = result.get("Id", entities[0].get("Id"))
    number = result.get("Number", entities[0].get("Number"))
    if fid in (None, "", 0):
        return SaveResult(False, errors=(f"Save succeeded without a bill id: {str(answer)[:300]}",))
    return SaveResult(True, fid=int(fid), number=None if number is None else str(number))


class QueryRejected(ValueError):
    """K3 answered an ExecuteBillQuery with an error (``IsSuccess: false``), not with rows."""


def parse_query_rows(answer: Any, width: int) -> list[list[Any]]:
    """Rows of an ExecuteBillQuery answer for ``width`` field keys.

    Raises ``QueryRejected`` on an error answer, ValueError on any other shape.
    """
    if not isinstance(answer, list):
        raise ValueError(f"{extract(answer)}, not a list of rows")
    if answer and isinstance(answer[0], list) and answer[0] and isinstance(answer[0][0], Mapping):
        status = _status(answer[0][0])
        raise QueryRejected(
            "an error: "
            + ("; ".join(error_messages(status)) or "no message")
            + f" ({extract(answer)})"
        )
    for row in answer:
        if not isinstance(row, list) or len(row) != width:
            raise ValueError(f"row {row!r}, not {width} field(s) ({extract(answer)})")
    return [list(row) for row in answer]


def parse_bill_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[int, str]]:
    """``(FID, FBillNo)`` of the rows of a ``FID,FBillNo`` query; ValueError naming any other row."""
    bills = []
    for row in rows:
        fid, number = row
        if isinstance(fid, str) and fid.isascii() and fid.isdigit():
            fid = int(fid)
        if not isinstance(fid, int) or isinstance(fid, bool) or fid <= 0:
            raise ValueError(f"row {list(row)!r}, whose FID is not a bill id")
        if not isinstance(number, str):
            raise ValueError(f"row {list(row)!r}, whose FBillNo is not text")
        bills.append((fid, number))
    return bills


def extract(answer: Any, size: int = 300) -> str:
    """The start of an answer, to quote in an error."""
    text = repr(answer)
    return f"answer {text[:size]}{'...' if len(text) > size else ''}"
