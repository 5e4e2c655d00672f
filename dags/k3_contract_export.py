"""
### k3_contract_export

Every hour, exports the contracts of `user_prop_db.sublessor_contract` that are new
or edited since their last export to Kingdee K3 Cloud (connection `k3_cloud`), so
that finance can book them.

- New contracts are created once (bill number `FBillNo` = `contract_no`); edited ones
  (`updated_datetime` later than the version exported) are updated through their K3 `FID`.
  Balance changes made by accounting keep `updated_datetime` and are never exported.
- Never creates a bill twice: nothing is created before a look-up by bill number
  (one look-up per page of contracts, split only when K3 forces it). A bill K3 already holds (made by the
  legacy `CrmK3ApiBiz`, or by a create whose answer was lost, looked up by the number
  that create sent even if CRM renamed the contract since) is adopted and updated
  through its FID. The attempt is committed as `in_flight` before a create is sent.
  Stop the legacy job before the first run (cutover: docs/k3_contract_export.md).
- A contract K3 refuses is recorded (`refused` + K3's message) and does not stop the
  others; the task then fails naming it, so retries and alerts fire. Fix the data
  and the next run (or a retry) exports it.
- Field mapping: Variable `k3_contract_field_map` (JSON), see docs/k3_contract_export.md.
- A create whose answer was lost and whose bill K3 does not show yet is not sent
  again for 10 minutes (a slow K3 may still commit it): counted `waiting`.
- Contracts that shared one K3 bill (set aside by migration 069, state `conflict`)
  are never sent; the task fails naming them until an operator resolves them
  (docs/k3_contract_export.md).
- Counts (`created`, `updated`, `unchanged`, `refused`, `waiting`, `conflict`) are the
  task's XCom.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, dag

from sublessor_airflow.dag_defaults import START_DATE, default_args
from sublessor_airflow.operators.k3_contract_export import K3ContractExportOperator


@dag(
    dag_id="k3_contract_export",
    schedule=CronTriggerTimetable("17 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(
        retries=3, retry_delay=timedelta(seconds=60), execution_timeout=timedelta(minutes=30)
    ),
    tags=["sublessor_billing", "k3"],
    doc_md=__doc__,
)
def k3_contract_export():
    K3ContractExportOperator(task_id="export_contracts")


k3_contract_export()
