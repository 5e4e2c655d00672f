"""
### broker_phone_sync

Every 5 minutes, copies the broker mobiles changed in `anjuke_db.ajk_brokerextend`
into `user_prop_db.broker_phone` (the broker phone library that call filtering
rule 5 reads).

- Each run reads the rows whose `updated_datetime` (Asia/Shanghai local time)
  lies in its data interval (UTC, converted), widened backwards by the Variable
  `broker_phone_sync_overlap_seconds` (default 900, minimum 600) to catch late commits.
- Rows are read in keyset pages on (`updated_datetime`, `BrokerId`); the whole run
  is one transaction: upsert normalized mobiles, record the brokers whose mobile
  is empty, check the removals, only then delete them, move
  `job_cursor['broker_phone_sync']`, commit. A run that fails or refuses writes
  nothing; a refused run has deleted nothing.
- Idempotent: a retry re-syncs the same interval with current rows.
- Backfill (re-syncs exactly those intervals, also ones that already ran):
  `airflow backfill create --dag-id broker_phone_sync --from-date 2026-03-01T00:00:00+00:00
  --to-date 2026-03-01T12:00:00+00:00 --reprocess-behavior completed`.
  The default `--reprocess-behavior none` skips every interval that already has a
  run, i.e. nearly all of them. To repair the whole table, trigger `full_resync` instead.
- Trigger with `{"full_resync": true}` to rebuild the whole table (adds, changes,
  removes; counts in the task's XCom and log).
- Removal guard: the numbers that leave the blacklist (deleted brokers and the
  old numbers of changed mobiles; a number shared by brokers leaves with the last
  of them) are counted per Asia/Shanghai day. A run that would take the day's
  total above the Variable `broker_phone_max_removal_share` (default 0.2) of the
  numbers `broker_phone` had at the start of the day writes nothing and fails
  without retries, naming the counts: an empty or wrong source must not empty
  the blacklist. Share 1 turns the guard off (a warning says so).
- When the brokers really left, trigger one run manually with
  `{"full_resync": true, "allow_removals_up_to": N}`: that run (its retries
  included) may remove up to N numbers, and refuses above N. Each use is recorded
  in `broker_phone_removal_allowance`. Refused on backfills and scheduled runs.
- A bad Variable or Param fails the run without retries, saying what to set.
- A plain manual trigger (no logical date: no data interval) syncs from the
  high-water minus the overlap to now.
- A scheduled run does a full resync instead when the last one is older than the
  Variable `broker_phone_full_resync_hours` (default 24, 0 turns it off): it catches
  commits later than the overlap. If the removal guard refuses that full resync,
  the run syncs its interval all the same (new brokers are still blacklisted),
  then fails naming the refusal; the next scheduled run tries the full resync again.
- Any mobile with digits is synced as normalized, foreign ones included
  (`+852 9123 4567`); one of fewer than 5 or more than 20 digits is counted as
  `implausible` in the report and logged masked. A mobile that is not blank but
  has no digit (`n/a`) is malformed: it does not stop the sync: every valid row
  is written, that broker
  keeps its current row, then the task fails naming each malformed BrokerId.
  Have the broker system fix the row; the next run syncs the fix.

See docs/broker_phone_sync.md.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag

from sublessor_airflow.dag_defaults import START_DATE, default_args
from sublessor_airflow.operators.broker_phone_sync import BrokerPhoneSyncOperator


@dag(
    dag_id="broker_phone_sync",
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(
        retries=3, retry_delay=timedelta(seconds=30), execution_timeout=timedelta(hours=1)
    ),
    params={
        "full_resync": Param(
            False,
            type="boolean",
            description="Rebuild broker_phone from every current mobile instead of one interval.",
        ),
        "allow_removals_up_to": Param(
            0,
            type="integer",
            minimum=0,
            description=(
                "How many numbers this manually triggered run may take out of broker_phone,"
                " instead of the day's broker_phone_max_removal_share (0: the share applies)."
                " Only after checking that the brokers really left."
            ),
        ),
    },
    tags=["sublessor_billing", "broker_phone"],
    doc_md=__doc__,
)
def broker_phone_sync():
    BrokerPhoneSyncOperator(task_id="sync_broker_phones")


broker_phone_sync()
