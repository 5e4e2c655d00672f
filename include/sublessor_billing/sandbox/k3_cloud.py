"""Sandbox Kingdee K3 Cloud WebAPI on 127.0.0.1 (contracts/k3-cloud.md), for tests and the demo.

Behaves like K3 where it matters to the export: login with an account set whose
name has non-ASCII text and spaces, a ``kdservice-sessionid`` cookie, Save that
creates a new bill whenever no ``FID`` is given (not idempotent), updates by
``FID``, ExecuteBillQuery filtered by ``FBillNo='x'`` or ``FBillNo IN ('x', ...)``
(matched by the sandbox's own collation, ``k3_collation_key``: case and trailing
spaces ignored, and with ``configure(width_insensitive=True)`` full-width and
half-width characters too, as SQL Server collations without ``_WS`` do), paged by
``StartRow``/``Limit`` in FID order, and sessions that expire.
``configure(row_cap=N)`` makes it return at most N rows per ExecuteBillQuery
whatever ``Limit`` asks, as a K3 server configured with a smaller page does.

    k3 = K3CloudSandbox().start()          # k3.k3_url -> "http://127.0.0.1:<port>/k3cloud/"
    k3.refuse("HT-1", "客户不存在")          # Save of that bill number is refused
    k3.add_bill({"FBillNo": "HT-1"})        # a bill another system created (not a Save)
    k3.expire_sessions()                    # next call answers MsgCode 1
    k3.answer_queries([[100001]], times=1)  # ExecuteBillQuery answers that, verbatim (a broken K3)
    k3.reject_lookup("HT-1", "过滤条件错误")  # a query naming that number answers an error
    k3.add_fault(Fault("error_after", path=k3.path(SAVE_PATH), times=1))  # commit, then HTTP 500

Over HTTP (another process): ``POST /_sandbox/setup`` with any of
``{"users": [{"acct_id", "username", "password"}], "refuse": {"HT-1": "msg"},
"accept": ["HT-1"], "expire_sessions": true, "bills": [{"FBillNo": "HT-1", ...}]}``;
``GET /_sandbox/state`` lists bills.
"""

from __future__ import annotations

import contextvars
import secrets
from typing import Any

from sublessor_billing.k3.api import (
    LOGIN_OK,
    LOGIN_PATH,
    QUERY_PATH,
    SAVE_PATH,
    SESSION_COOKIE,
    SESSION_EXPIRED_CODE,
)
from sublessor_billing.sandbox.k3_filter import k3_collation_key, parse_bill_filter
from sublessor_billing.sandbox.server import Fault, SandboxServer

__all__ = ["Fault", "K3CloudSandbox", "LOGIN_PATH", "QUERY_PATH", "SAVE_PATH"]

DEFAULT_ACCT_ID = "瑞庭（上海）1117 aaa"
_REQUEST_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("k3_request_session")
_NEW_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("k3_new_session")
_ORDERS = {"", "FID", "FID ASC"}


def _status(ok: bool, **extra: Any) -> dict[str, Any]:
    return {"IsSuccess": ok, "Errors": [], "SuccessEntitys": [], "SuccessMessages": [], **extra}


def _failure(errors: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    listed = [{"FieldName": f, "Message": m, "DIndex": 0} for f, m in errors]
    return {"Result": {"ResponseStatus": {**_status(False, **extra), "Errors": listed}}}


class K3CloudSandbox(SandboxServer):
    """In-memory K3 Cloud: bills by FID, sessions, refusals; see the module docstring."""

    name = "k3_cloud"
    base_path = "/k3cloud/"

    def __init__(
        self,
        *,
        acct_id: str = DEFAULT_ACCT_ID,
        username: str = "api_user",
        password: str = "api-secret",
        form_id: str = "SUBL_Contract",
        first_fid: int = 100001,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        self.users = {(acct_id, username): password}
        self.form_id = form_id
        self.bills: dict[int, dict[str, Any]] = {}
        self.sessions: set[str] = set()
        self.refusals: dict[str, str] = {}
        self.lookup_rejections: dict[str, str] = {}
        self.next_fid = first_fid
        self.row_cap = 0  # rows per ExecuteBillQuery at most, whatever Limit asks (0: Limit rules)
        self.width_insensitive = False  # bill numbers compared without regard to width
        self.unique_numbers = False  # a Save giving a bill another bill's number is refused
        self.canned_queries: list[Any] = []  # answers given verbatim to the next queries
        self.canned_forever: Any = None
        self.logins = self.failed_logins = self.creates = self.updates = self.expired_answers = 0

    # -- control and inspection (in-process) ------------------------------------------
    @property
    def k3_url(self) -> str:
        return self.url + self.base_path

    def path(self, service_path: str) -> str:
        """The HTTP path of a service (for ``Fault(path=...)``)."""
        return self.base_path + service_path

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        row_cap: int | None = None,
        width_insensitive: bool | None = None,
        unique_numbers: bool | None = None,
    ) -> None:
        """Also ``row_cap`` (most rows per ExecuteBillQuery, 0: as Limit asks), the collation, and
        ``unique_numbers`` (a Save giving a bill the number of another is refused)."""
        super().configure(latency_ms=latency_ms)
        with self.lock:
            if unique_numbers is not None:
                self.unique_numbers = bool(unique_numbers)
            if row_cap is not None:
                self.row_cap = int(row_cap)
            if width_insensitive is not None:
                self.width_insensitive = bool(width_insensitive)

    def matches(self, bill_no: str, numbers: list[str]) -> bool:
        """Whether K3 would answer bill number ``bill_no`` to a filter naming ``numbers``."""
        key = k3_collation_key(bill_no, width_insensitive=self.width_insensitive)
        return any(
            key == k3_collation_key(n, width_insensitive=self.width_insensitive) for n in numbers
        )

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def answer_queries(self, answer: Any, *, times: int | None = None) -> None:
        """Answer the next ``times`` ExecuteBillQuery calls (None: all) with ``answer`` verbatim."""
        with self.lock:
            if times is None:
                self.canned_forever = answer
            else:
                self.canned_queries += [answer] * times

    def reject_lookup(self, bill_no: str, message: str) -> None:
        """ExecuteBillQuery answers an error whenever its filter names ``bill_no``."""
        with self.lock:
            self.lookup_rejections[bill_no] = message

    def accept_lookup(self, bill_no: str) -> None:
        with self.lock:
            self.lookup_rejections.pop(bill_no, None)

    def refuse(self, bill_no: str, message: str) -> None:
        with self.lock:
            self.refusals[bill_no] = message

    def accept(self, bill_no: str) -> None:
        with self.lock:
            self.refusals.pop(bill_no, None)

    def add_bill(self, model: dict[str, Any]) -> int:
        """Put a bill in K3 as another system did (the legacy exporter): counted as no Save."""
        with self.lock:
            fid, self.next_fid = self.next_fid, self.next_fid + 1
            self.bills[fid] = {**model, "FID": fid}
            return fid

    def bills_by_number(self, bill_no: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(b) for fid, b in sorted(self.bills.items()) if b.get("FBillNo") == bill_no]

    def bill_count(self) -> int:
        with self.lock:
            return len(self.bills)

    def state(self) -> dict[str, Any]:
        return {
            "bills": [dict(b) for _, b in sorted(self.bills.items())],
            "bill_count": len(self.bills),
            "sessions": len(self.sessions),
            "logins": self.logins,
            "failed_logins": self.failed_logins,
            "creates": self.creates,
            "updates": self.updates,
            "expired_answers": self.expired_answers,
            "refusals": dict(self.refusals),
        }

    def setup(self, body: dict[str, Any]) -> None:
        for user in body.get("users", []):
            self.users[(user["acct_id"], user["username"])] = user["password"]
        self.refusals.update(body.get("refuse", {}))
        for bill_no in body.get("accept", []):
            self.refusals.pop(bill_no, None)
        if body.get("expire_sessions"):
            self.sessions.clear()
        for model in body.get("bills", []):
            self.add_bill(model)

    # -- HTTP -------------------------------------------------------------------------
    async def _dispatch(self, request: Any) -> Any:
        """Carry the session cookie in and a new one out (the base hands ``handle`` the body only)."""
        _REQUEST_SESSION.set(request.cookies.get(SESSION_COOKIE))
        _NEW_SESSION.set(None)
        response = await super()._dispatch(request)
        session_id = _NEW_SESSION.get()
        if session_id and response.status == 200:
            response.set_cookie(SESSION_COOKIE, session_id, path="/", httponly=True)
        return response

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        service = path.rsplit("/", 1)[-1]
        if service == LOGIN_PATH:
            return 200, self._login(body)
        if service not in (SAVE_PATH, QUERY_PATH):
            return 404, {"Message": f"no K3 service {service!r}"}
        if _REQUEST_SESSION.get(None) not in self.sessions:
            self.expired_answers += 1
            answer = _failure([("", "会话信息已丢失，请重新登录")], MsgCode=SESSION_EXPIRED_CODE)
            return 200, (answer if service == SAVE_PATH else [[answer]])
        if service == SAVE_PATH:
            return 200, self._save(body)
        if self.canned_queries:
            return 200, self.canned_queries.pop(0)
        if self.canned_forever is not None:
            return 200, self.canned_forever
        return 200, self._query(body)

    def _login(self, body: dict[str, Any]) -> dict[str, Any]:
        acct_id, username = body.get("acctID"), body.get("username")
        expected = self.users.get((acct_id, username))
        if expected is None or body.get("password") != expected:
            self.failed_logins += 1
            known = any(a == acct_id for a, _ in self.users)
            message = "用户名或密码错误！" if known else f"数据中心 {acct_id!r} 不存在"
            return {"LoginResultType": 0, "Message": message, "Context": None}
        session_id = secrets.token_hex(16)
        self.sessions.add(session_id)
        self.logins += 1
        _NEW_SESSION.set(session_id)
        return {
            "LoginResultType": LOGIN_OK,
            "Message": None,
            "KDSVCSessionId": session_id,
            "Context": {"UserName": username, "DBid": acct_id, "LCID": body.get("lcid", 2052)},
        }

    def _save(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("formid") != self.form_id:
            return _failure([("formid", f"业务对象 {body.get('formid')!r} 不存在")])
        model = dict((body.get("data") or {}).get("Model") or {})
        bill_no = str(model.get("FBillNo") or "").strip()
        if not bill_no:
            return _failure([("FBillNo", "单据编号 FBillNo 不能为空")])
        if bill_no in self.refusals:
            return _failure([("FBillNo", self.refusals[bill_no])])
        fid = int(model.pop("FID", 0) or 0)
        twins = [
            f for f, b in self.bills.items() if f != fid and self.matches(b["FBillNo"], [bill_no])
        ]
        if self.unique_numbers and twins:
            return _failure([("FBillNo", f"单据编号 {bill_no} 已被 FID {twins[0]} 使用")])
        if fid:
            if fid not in self.bills:
                return _failure([("FID", f"单据 FID={fid} 不存在")])
            self.bills[fid].update(model)
            self.updates += 1
        else:
            fid, self.next_fid = self.next_fid, self.next_fid + 1
            self.bills[fid] = {"FID": fid, **model}
            self.creates += 1
        entity = {"Id": fid, "Number": bill_no, "DIndex": 0}
        status = {**_status(True), "SuccessEntitys": [entity]}
        return {
            "Result": {"ResponseStatus": status, "Id": fid, "Number": bill_no, "NeedReturnData": []}
        }

    def _query(self, body: dict[str, Any]) -> list[Any]:
        data = body.get("data") or {}
        try:
            if data.get("FormId") != self.form_id:
                raise ValueError(f"业务对象 {data.get('FormId')!r} 不存在")
            numbers = parse_bill_filter(str(data.get("FilterString") or ""))
            if str(data.get("OrderString") or "").strip() not in _ORDERS:
                raise ValueError(f"sandbox K3 orders only by FID; got {data.get('OrderString')!r}")
            for bill_no, message in self.lookup_rejections.items():
                if numbers is not None and self.matches(bill_no, numbers):
                    raise ValueError(message)
        except ValueError as exc:
            return [[_failure([("FilterString", str(exc))])]]
        keys = [k.strip() for k in str(data.get("FieldKeys") or "FID").split(",") if k.strip()]
        rows = [
            [bill.get(k) for k in keys]
            for _, bill in sorted(self.bills.items())
            if numbers is None or self.matches(str(bill.get("FBillNo")), numbers)
        ]
        start, limit = int(data.get("StartRow") or 0), int(data.get("Limit") or 0)
        top = int(data.get("TopRowCount") or 0)
        rows = rows[:top] if top else rows
        limit = min(limit or len(rows), self.row_cap or len(rows))
        return rows[start : start + limit]
