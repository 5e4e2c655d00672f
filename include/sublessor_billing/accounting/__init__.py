"""Accounting income (会计收入): allocate successful payments to contracts, and check it."""

from __future__ import annotations

from sublessor_billing.accounting.allocation import (
    Allocation,
    Contract,
    IncomeRow,
    SettledPayment,
    allocate,
)
from sublessor_billing.accounting.check import (
    CHECK_CURSOR_NAME,
    CHECK_INCOME_MARK_NAME,
    IncomeCheck,
    IncomeMismatchError,
    check_income,
)
from sublessor_billing.accounting.recognise import (
    CURSOR_NAME,
    RecognitionCounts,
    ensure_cursor,
    recognise_batch,
    recognise_until_caught_up,
)
from sublessor_billing.config import ACCOUNTING_INCOME_BATCH_SIZE

__all__ = [
    "ACCOUNTING_INCOME_BATCH_SIZE",
    "CHECK_CURSOR_NAME",
    "CHECK_INCOME_MARK_NAME",
    "CURSOR_NAME",
    "Allocation",
    "Contract",
    "IncomeCheck",
    "IncomeMismatchError",
    "IncomeRow",
    "RecognitionCounts",
    "SettledPayment",
    "allocate",
    "check_income",
    "ensure_cursor",
    "recognise_batch",
    "recognise_until_caught_up",
]
