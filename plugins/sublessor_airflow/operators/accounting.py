"""Operators of accounting_income: thin glue around ``sublessor_billing.accounting``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

from sublessor_airflow.operators.base import UserPropDbOperator
from sublessor_billing.accounting import (
    ACCOUNTING_INCOME_BATCH_SIZE,
    IncomeMismatchError,
    check_income,
    recognise_until_caught_up,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class RecogniseIncomeOperator(UserPropDbOperator):
    """Advance the accounting cursor batch by batch until caught up; return the counts.

    :param batch_size: payments per transaction (templated); None or empty: the Variable
        ``accounting_income_batch_size``.
    :param max_batches: a bound on the batches of one run.
    """

    template_fields: Sequence[str] = (*UserPropDbOperator.template_fields, "batch_size")
    ui_color = "#e8f4e8"

    def __init__(
        self, *, batch_size: int | str | None = None, max_batches: int = 10_000, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.batch_size = batch_size
        self.max_batches = max_batches

    def resolved_batch_size(self) -> int:
        """The argument if given, else the Variable ``accounting_income_batch_size`` (default 5000)."""
        from sublessor_airflow.variables import get_int, int_setting

        if self.batch_size in (None, ""):
            return get_int(ACCOUNTING_INCOME_BATCH_SIZE)
        return int_setting(ACCOUNTING_INCOME_BATCH_SIZE, self.batch_size)

    def execute(self, context: Context) -> dict[str, int]:
        batch_size = self.resolved_batch_size()
        with closing(self.connect()) as conn:
            counts = recognise_until_caught_up(
                conn, batch_size=batch_size, max_batches=self.max_batches
            )
        self.log.info(
            "Recognised up to payment %s: %s payments in %s batches, %s income rows, "
            "%s fen allocated, %s fen unallocated, %s late-settled recognised, %s dropped",
            counts.cursor,
            counts.payments_processed,
            counts.batches,
            counts.income_rows,
            counts.money_allocated,
            counts.money_unallocated,
            counts.late_settled_recognised,
            counts.late_settled_dropped,
        )
        return counts.as_dict()


class CheckIncomeOperator(UserPropDbOperator):
    """Prove income matches the successful payments up to the cursor; warn on unallocated money.

    :param full_check: re-check the whole history (templated, e.g.
        ``"{{ params.full_check }}"``); by default only what is new since the last passed check.
    """

    template_fields: Sequence[str] = (*UserPropDbOperator.template_fields, "full_check")
    ui_color = "#f4f0e8"

    def __init__(self, *, full_check: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.full_check = full_check

    def wants_full_check(self) -> bool:
        value = self.full_check
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no", "", "none"):
            return False
        raise ValueError(f"full_check must be true or false, got {value!r}")

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        full = self.wants_full_check()
        with closing(self.connect()) as conn:
            try:
                report = check_income(conn, full=full)
            except IncomeMismatchError as exc:
                # A retry cannot fix tampered or broken rows: fail now, loudly.
                raise AirflowFailException(str(exc)) from exc
        result = report.as_dict()
        if report.unallocated_amount:
            result["warning"] = (
                f"{report.unallocated_amount} fen of {report.unallocated_payments} payments "
                f"({report.unallocated_sublessors} sublessors) recognised with no contract"
            )
            # check_income already logged it as a WARNING with the details.
        return result
