"""Sandbox payment center: ``/trade/charge`` and ``/trade/query`` exactly as payment-api.md says.

Accounts hold balances in fen and may be frozen; an account that does not
exist answers 1002. ``order_id``, ``user_id`` and ``amount`` must be JSON
integers (a string or float is refused with 1000, never coerced). Every order id is remembered with the parameters and the
result it first got; ``ledger`` counts how many times money actually moved
per order id, so tests can prove that nothing was charged twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sublessor_billing.sandbox.server import SandboxServer
from sublessor_billing.signing import verify

ORDER_ID_MIN = 820000000000


@dataclass
class Account:
    balance: int
    frozen: bool = False


def json_int(body: dict[str, Any], name: str) -> int:
    """A JSON integer field: a string, float or boolean is a bad request, not coerced."""
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a JSON integer, got {type(value).__name__} {value!r}")
    return value


class PaymentCenter(SandboxServer):
    name = "payment"

    def __init__(self, apps: dict[str, str], *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.apps = dict(apps)
        self.accounts: dict[int, Account] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.ledger: dict[int, int] = {}

    # -- setup ------------------------------------------------------------------------
    def set_account(self, user_id: int, balance: int, *, frozen: bool = False) -> None:
        with self.lock:
            self.accounts[int(user_id)] = Account(int(balance), frozen)

    def setup(self, body: dict[str, Any]) -> None:
        """``{"accounts": [{"user_id": 1, "balance": 4000, "frozen": false}], "reset": true}``."""
        if body.get("reset"):
            self.accounts.clear()
            self.orders.clear()
            self.ledger.clear()
        for acc in body.get("accounts", []):
            self.accounts[int(acc["user_id"])] = Account(
                int(acc["balance"]), bool(acc.get("frozen"))
            )

    def balance(self, user_id: int) -> int | None:
        with self.lock:
            acc = self.accounts.get(int(user_id))
            return None if acc is None else acc.balance

    def state(self) -> dict[str, Any]:
        return {
            "orders": len(self.orders),
            "charges": sum(self.ledger.values()),
            "double_charged": sorted(k for k, n in self.ledger.items() if n > 1),
            "charged_fen": sum(o["amount"] for k, o in self.orders.items() if self.ledger.get(k)),
        }

    # -- API --------------------------------------------------------------------------
    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = self.apps.get(str(body.get("app_id")))
        if key is None or not verify(body, key):
            return 200, {"code": 1003, "message": "bad signature"}
        if path == "/trade/charge":
            return self._charge(body)
        if path == "/trade/query":
            return self._query(body)
        return 404, {"code": 404, "message": f"no such endpoint {path}"}

    def _charge(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            order_id, user_id, amount = (
                json_int(body, "order_id"),
                json_int(body, "user_id"),
                json_int(body, "amount"),
            )
            subject = body["subject"]
            if not isinstance(subject, str):
                raise TypeError(f"subject must be a JSON string, got {subject!r}")
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"code": 1000, "message": f"bad request: {exc!r}"}
        if order_id < ORDER_ID_MIN:
            return 400, {"code": 1005, "message": f"order_id below {ORDER_ID_MIN} is not yours"}
        if amount <= 0:
            return 400, {"code": 1000, "message": "amount must be a positive number of fen"}
        params = {"user_id": user_id, "amount": amount, "subject": subject}
        seen = self.orders.get(order_id)
        if seen is not None:
            if seen["params"] != params:
                return 200, {
                    "code": 1004,
                    "message": "order_id already used with different parameters",
                }
            return 200, {**seen["result"], "duplicate": True}
        acc = self.accounts.get(user_id)
        if acc is None or acc.frozen:
            result = {"code": 1002, "message": "account not found or frozen"}
        elif acc.balance < amount:
            result = {"code": 1001, "message": "insufficient balance", "balance": acc.balance}
        else:
            acc.balance -= amount
            self.ledger[order_id] = self.ledger.get(order_id, 0) + 1
            result = {"code": 0, "message": "ok", "balance": acc.balance}
        self.orders[order_id] = {"params": params, "result": result, "amount": amount}
        return 200, result

    def _query(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            order_id = json_int(body, "order_id")
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"code": 1000, "message": f"bad request: {exc!r}"}
        seen = self.orders.get(order_id)
        if seen is None:
            return 200, {"code": 0, "status": "not_found"}
        result = seen["result"]
        answer = {
            "code": 0,
            "status": "success" if result["code"] == 0 else "failed",
            "result_code": result["code"],
            "amount": seen["amount"],
            "user_id": seen["params"]["user_id"],
        }
        # balance whenever the order exists: the answer's, else (1002) the account's now, or 0
        # when the account does not exist.
        if "balance" in result:
            answer["balance"] = result["balance"]
        else:
            acc = self.accounts.get(seen["params"]["user_id"])
            answer["balance"] = 0 if acc is None else acc.balance
        return 200, answer
