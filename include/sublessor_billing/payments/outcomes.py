"""What an answer of the payment center means for one order (payment-api.md's code table).

Anything that does not prove a definitive result (timeout, HTTP 5xx, a body
that is not the documented JSON, an unknown code) leaves the order ``pending``:
the same order id is sent again later and the payment center's idempotency
answers with the first result, so "unknown" is always safe to retry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from sublessor_billing.db.tables import PAYMENT_LOG


class PaymentStatus(enum.StrEnum):
    """``status`` of the payment log: pending until an answer proves a result."""

    PENDING = "pending"
    SUCCESS = "success"
    INSUFFICIENT = "insufficient"
    FAILED = "failed"


class ChargeCode(enum.IntEnum):
    """``code`` of a /charge answer (payment-api.md's code table)."""

    OK = 0
    INSUFFICIENT = 1001  # insufficient balance
    ACCOUNT = 1002  # account not found or frozen
    BAD_SIGN = 1003  # our configuration is wrong: leave the call pending, fail loudly
    ORDER_REUSED = 1004  # order id already used with different parameters


SETTLED = (PaymentStatus.SUCCESS, PaymentStatus.INSUFFICIENT, PaymentStatus.FAILED)

# Kept in last_error of a 1004 row until someone has checked it (docs/payments.md).
REUSED_NOTE = "order id reused (1004): unresolved; clear last_error once checked"
# Our order ids start here (payment log AUTO_INCREMENT); below it they may be another system's.
ORDER_ID_MIN = 820000000000


class UnknownOutcome(Exception):
    """The request may or may not have reached the service (timeout, 5xx, garbage, connection error)."""


class OrderIdOutOfRange(RuntimeError):
    """Order ids below ORDER_ID_MIN (AUTO_INCREMENT reset, or a row inserted by hand): never sent."""

    def __init__(self, order_ids: list[int], *, others_settled: bool = False) -> None:
        shown = ", ".join(str(oid) for oid in order_ids[:20])
        held = "; held back, every other pending order is settled" if others_settled else ""
        super().__init__(
            f"Refusing to send order id(s) {shown} ({len(order_ids)} in all{held}): below "
            f"{ORDER_ID_MIN}, so the AUTO_INCREMENT of {PAYMENT_LOG} "
            "was reset (MySQL 5.7 does not persist it across a restart of an empty table) or the "
            "rows were inserted by hand. Fix: python -m sublessor_billing.payments.repair "
            "release-held --yes, which raises the AUTO_INCREMENT of the payment log to at least "
            f"{ORDER_ID_MIN} and above every id in the log (never lowers it; when no id from "
            f"{ORDER_ID_MIN} up is left, it asks for --above <the highest order id ever sent>), "
            "then deletes these pending rows (never sent) and sets order_allocated = 0 on their "
            "calls in one transaction, so the next run gives them new order ids "
            "(docs/payments.md)."
        )
        self.order_ids = order_ids


def check_order_ids(order_ids: list[int]) -> None:
    """Raise ``OrderIdOutOfRange`` if any order id is below ORDER_ID_MIN."""
    low = sorted(oid for oid in order_ids if oid < ORDER_ID_MIN)
    if low:
        raise OrderIdOutOfRange(low)


class PaymentConfigurationError(RuntimeError):
    """The payment center refused our signature (1003): nothing moved, our configuration is wrong."""


@dataclass(frozen=True)
class PendingOrder:
    """A row of the payment log still waiting for its outcome; its fields are what is sent."""

    order_id: int
    sublessor_id: int
    amount: int
    subject: str


@dataclass(frozen=True)
class Outcome:
    order_id: int
    sublessor_id: int
    status: str
    amount: int = 0
    result_code: int | None = None
    message: str | None = None
    balance: int | None = None
    error: str | None = None  # why still pending
    attempts: int = 1  # requests sent for it in this pass; 0: not sent (an earlier one is unknown)
    bad_signature: bool = False


class PaymentClient(Protocol):
    """Asynchronous; ``async with client:`` opens its connection pool (``payments.api.PaymentApi``)."""

    def describe(self, endpoint: str) -> str:
        """``connection '<id>' at <url>``, for error messages."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> Any: ...

    async def charge(
        self, *, order_id: int, user_id: int, amount: int, subject: str
    ) -> dict[str, Any]:
        """POST /trade/charge; return the JSON body or raise ``UnknownOutcome``."""


class ListingClient(Protocol):
    """Asynchronous; ``async with client:`` opens its connection pool (``payments.api.ListingApi``)."""

    def describe(self, endpoint: str) -> str:
        """``connection '<id>' at <url>``, for error messages."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> Any: ...

    async def offline_all(self, *, user_id: int, reason: str, request_id: str) -> dict[str, Any]:
        """POST /listing/offline_all; return the JSON body or raise ``UnknownOutcome``."""


def describe(client: Any, endpoint: str) -> str:
    """Name the connection and address of ``client`` for an error message."""
    how = getattr(client, "describe", None)
    return how(endpoint) if callable(how) else f"{type(client).__name__} {endpoint}"


def _int_or_none(value: Any, bits: int = 63) -> int | None:
    """An integer the payment log can store (signed, ``bits`` + 1 bits wide), else None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except ValueError:  # not a number, or more digits than Python converts
        return None
    return number if -(2**bits) <= number < 2**bits else None


def _text(value: Any, length: int) -> str | None:
    """At most ``length`` characters that MySQL's utf8mb4 accepts (a lone surrogate becomes ?)."""
    text = str(value or "")[:length]
    return text.encode("utf-8", "replace").decode("utf-8") or None


def classify_charge(order: PendingOrder, body: Any, where: str = "the payment center") -> Outcome:
    """Map one ``/trade/charge`` answer to the status the order gets (``where`` names the source)."""

    def outcome(status: str, **kw: Any) -> Outcome:
        return Outcome(order.order_id, order.sublessor_id, status, order.amount, **kw)

    # result_code is an INT and balance_after a BIGINT: a number beyond them is no answer,
    # and must not fail the batch that records it with other orders' answers.
    code = _int_or_none(body.get("code"), bits=31) if isinstance(body, dict) else None
    if code is None:
        return outcome(
            PaymentStatus.PENDING,
            error=f"answer without an integer code from {where}: {str(body)[:200]}",
        )
    message = _text(body.get("message"), 255)
    balance = _int_or_none(body.get("balance"))
    if code == ChargeCode.OK:
        return outcome(PaymentStatus.SUCCESS, result_code=code, message=message, balance=balance)
    if code == ChargeCode.INSUFFICIENT:
        return outcome(
            PaymentStatus.INSUFFICIENT, result_code=code, message=message, balance=balance
        )
    if code == ChargeCode.ACCOUNT:
        return outcome(
            PaymentStatus.FAILED, result_code=code, message=message or f"refused with code {code}"
        )
    if code == ChargeCode.ORDER_REUSED:
        # Our ids and parameters are stored, so 1004 means the id was used before us.
        return outcome(
            PaymentStatus.FAILED,
            result_code=code,
            message=message or "order id already used with different parameters",
            error=REUSED_NOTE,
        )
    if code == ChargeCode.BAD_SIGN:
        return outcome(
            PaymentStatus.PENDING,
            result_code=code,
            error="1003 bad signature: app id / key wrong",
            bad_signature=True,
        )
    return outcome(
        PaymentStatus.PENDING,
        result_code=code,
        error=f"undocumented code {code} from {where}: {message}; the order stays pending and "
        "is sent again with the same order id (check payment-api.md against the service)",
    )


def offline_signal(outcome: Outcome, price_fen: int) -> bool | None:
    """What a settled charge says about the sublessor's listings (payment-api.md's rule).

    True: take them offline (refused for money or account, or charged down to less
    than one call's price). False: keep them online (charged, at least one call's
    price left). None: says nothing about the account (1004, a success whose answer
    carried no balance, an outcome still pending).
    """
    if outcome.status == PaymentStatus.INSUFFICIENT or (
        outcome.status == PaymentStatus.FAILED and outcome.result_code == ChargeCode.ACCOUNT
    ):
        return True
    if outcome.status == PaymentStatus.SUCCESS and outcome.balance is not None:
        return outcome.balance < price_fen
    return None


def offline_reason(outcome: Outcome) -> str:
    """The signed ``reason`` of an offline request: ASCII fields only (codes, ids, balance).

    The payment center's free-text ``message`` (often Chinese) stays out: how the
    contract signs non-ASCII text, quotes or backslashes is our reading only
    (docs/payments.md, "Signing"), and a reason must never make a request unsignable.
    """
    if outcome.status == PaymentStatus.SUCCESS:
        return f"balance {outcome.balance} fen after order {outcome.order_id} is below one call's price"
    balance = "" if outcome.balance is None else f", balance {outcome.balance} fen"
    return (
        f"order {outcome.order_id} of sublessor {outcome.sublessor_id} refused with code "
        f"{outcome.result_code}{balance}"
    )


def offline_request_id(trigger_order_id: int) -> str:
    """One request id per decision, derived from the charge that caused it (stable across reruns)."""
    return f"sublessor-offline-{trigger_order_id}"
