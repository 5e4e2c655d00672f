"""Assets shared between DAGs: the billing DAG produces them, accounting consumes them."""

from __future__ import annotations

from airflow.sdk import Asset

# Updated whenever the charge task settles payments (new rows in the payment log).
SUBLESSOR_PAYMENTS = Asset(
    name="sublessor_call_payment_log_201409",
    uri="user-prop-db://user_prop_db/sublessor_call_payment_log_201409",
    group="sublessor_billing",
)
