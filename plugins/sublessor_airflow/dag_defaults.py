"""What every billing DAG sets alike: its start, and the failure alert on each of its tasks.

Each DAG file still states its own retries, retry delay and execution timeout,
and that it runs one at a time without catch-up; only the values they all share
are here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sublessor_airflow.alerts.notifier import BillingAlertNotifier

# Every DAG starts here; with catchup=False no run before the first scheduled one is made.
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def default_args(
    *, retries: int, retry_delay: timedelta, execution_timeout: timedelta
) -> dict[str, Any]:
    """The ``default_args`` of a billing DAG: these retries and timeout, and the failure alert.

    A task that fails for good notifies ``BillingAlertNotifier``, whichever DAG it is in.
    """
    return {
        "retries": retries,
        "retry_delay": retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": [BillingAlertNotifier()],
    }
