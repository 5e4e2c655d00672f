"""The names of the tables in ``user_prop_db``, defined once.

The production names are fixed by ``shared/contracts`` (tables.md); every
module's SQL interpolates these constants rather than writing a name again.
"""

CALL_LOG = "sublessor_call_log_201409"
PAYMENT_LOG = "sublessor_call_payment_log_201409"
INCOME = "sublessor_accounting_income_201409"
CONTRACT = "sublessor_contract"
BROKER_PHONE = "broker_phone"
JOB_CURSOR = "job_cursor"
QUARANTINE = "call400_quarantine"
OFFLINE_EVENT = "sublessor_offline_event"
ALERT = "billing_alert"
UNSETTLED_PAYMENT = "accounting_unsettled_payment"
K3_EXPORT_STATE = "k3_contract_export_state"
K3_EXPORT_CONFLICT = "k3_contract_export_conflict"
OPS_ACTION = "billing_ops_action"
REMOVAL_ALLOWANCE = "broker_phone_removal_allowance"
SCHEMA_VERSION = "schema_version"
