"""Names the tests agree on."""

from __future__ import annotations

# The four DAG ids of contracts/runtime.md, and this project's alerts DAG: nothing else.
DAG_IDS = frozenset(
    {
        "accounting_income",
        "billing_alerts",
        "broker_phone_sync",
        "call400_billing",
        "k3_contract_export",
    }
)
