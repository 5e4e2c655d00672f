"""
### accounting_income

Recognises accounting income (会计收入): every successful payment in
`sublessor_call_payment_log_201409` is allocated, once, in ascending payment id,
to its sublessor's contracts in `sublessor_contract` (active, covering the
call's date, balance > 0; earliest `start_date` first, then lowest id; split when
needed; what no contract takes is one row with `contract_id` NULL) and written
to `sublessor_accounting_income_201409`; the contracts' `balance` drops
accordingly, with `updated_datetime` untouched.

- Runs every 5 minutes and whenever call400_billing updates the payments asset.
- `recognise_income`: batches of `accounting_income_batch_size` (Variable,
  default 5000) payments after `job_cursor['accounting_income']`, one transaction
  each (cursor locked, contracts locked, income, balances, cursor). Payments still
  pending are watched in `accounting_unsettled_payment` and recognised when they
  succeed. Returns the counts (XCom).
- `check_income`: proves the income rows add up to the successful payments up to
  the cursor; fails naming the payment ids otherwise (no retry: fix the rows
  first). Money with no contract is a WARNING in the log and the XCom.
  Incremental: payments since the last passed check plus late settlements
  allocated since then. A full check of the whole history runs when the last one
  is older than 24 h, or when the run is triggered with param `full_check` = true.
- Safe to rerun at any time; two runs at once serialize on the cursor row.

See docs/accounting_income.md.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag

from sublessor_airflow.assets import SUBLESSOR_PAYMENTS
from sublessor_airflow.dag_defaults import START_DATE, default_args
from sublessor_airflow.operators.accounting import CheckIncomeOperator, RecogniseIncomeOperator


@dag(
    dag_id="accounting_income",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
        assets=[SUBLESSOR_PAYMENTS],
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(
        retries=3, retry_delay=timedelta(seconds=20), execution_timeout=timedelta(minutes=30)
    ),
    tags=["sublessor_billing", "accounting"],
    params={
        "full_check": Param(
            False,
            type="boolean",
            description="Check the whole income history, not only what is new since the last check.",
        )
    },
    doc_md=__doc__,
)
def accounting_income():
    recognise = RecogniseIncomeOperator(task_id="recognise_income")
    check = CheckIncomeOperator(task_id="check_income", full_check="{{ params.full_check }}")
    recognise >> check


accounting_income()
