"""Post alerts as JSON to the HTTP connection ``billing_alert_webhook``; nothing when it is not defined.

The connection (type http) holds the whole webhook URL in ``host`` (scheme, host,
port, path); its extra holds the headers to send (e.g. an ``Authorization``
token) and optionally ``timeout`` (seconds per attempt, default 5). Without the connection
alerts are off: that is logged once per process, and nothing is sent.

A post that meets a transient fault (connection refused or reset, timeout, HTTP 429
or 5xx) is tried again, ``ATTEMPTS`` times in all, 1 s then 2 s apart: a failure
callback runs once, so a receiver that blips must not lose the alert. Anything
else (a 4xx, a malformed URL or header) is not retried. A receiver that accepted
a post but answered late or with a 5xx may get it twice: receivers group on
``dedup_key``. With the default timeout one alert takes at most 18 s, well inside
the dag-processor's budget when it runs the callback of a task that lost its process.

Used as ``on_failure_callback`` of the billing DAGs (a task that failed for good,
retries exhausted) and by the billing_alerts DAG's checks.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import BaseHook, BaseNotifier
from airflow.sdk.exceptions import AirflowNotFoundException

log = logging.getLogger(__name__)

ALERT_CONN_ID = "billing_alert_webhook"
_TIMEOUT_S = 5
ATTEMPTS = 3
RETRY_WAIT_S = 1.0  # then 2 s: a callback is done within timeout * 3 + 3 s
_EXCEPTION_CHARS = 1000
_reported_missing: set[str] = set()


class AlertWebhookError(RuntimeError):
    pass


class _Transient(Exception):
    """An answer worth trying again (HTTP 429 or 5xx)."""


class BillingAlertNotifier(BaseNotifier):
    """Send one JSON object per alert to the webhook of ``conn_id``."""

    def __init__(self, *, conn_id: str = ALERT_CONN_ID, retry_wait_s: float = RETRY_WAIT_S) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.retry_wait_s = retry_wait_s

    def notify(self, context: Any) -> None:
        self.send(task_failure_payload(context))

    def send(self, payload: dict) -> bool:
        """POST ``payload``; False when alerts are off (no connection), raises when the post fails."""
        try:
            conn = BaseHook.get_connection(self.conn_id)
        except AirflowNotFoundException:
            if self.conn_id not in _reported_missing:
                _reported_missing.add(self.conn_id)
                log.warning(
                    "Billing alerts are off: Airflow connection %r is not defined (type http, host ="
                    " the webhook URL); define it to receive alerts. Not sent: %s",
                    self.conn_id,
                    payload.get("summary"),
                )
            return False
        timeout = float(conn.extra_dejson.get("timeout", _TIMEOUT_S))
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(ATTEMPTS),
            wait=tenacity.wait_exponential(multiplier=self.retry_wait_s),
            retry=tenacity.retry_if_exception_type(
                (_Transient, requests.ConnectionError, requests.Timeout)
            ),
            reraise=True,
        )
        try:
            retrying(self._post_once, payload, timeout)
        except Exception as exc:
            raise AlertWebhookError(
                f"Could not post the alert {payload.get('alert')!r} to the webhook of connection "
                f"{self.conn_id!r} ({ATTEMPTS} attempts at most): {exc}. Check the connection's "
                "URL and that the receiver is up."
            ) from exc
        return True

    def _post_once(self, payload: dict, timeout: float) -> None:
        response = HttpHook(method="POST", http_conn_id=self.conn_id).run(
            json=payload, extra_options={"timeout": timeout, "check_response": False}
        )
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status} {response.reason}")
        if status >= 400:
            raise AlertWebhookError(f"HTTP {status} {response.reason} (not retried)")


def task_failure_payload(context: Any) -> dict:
    """The alert for a task that failed for good, from its Airflow context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None)
    task_id = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", -1)
    mapped = isinstance(map_index, int) and map_index >= 0  # e.g. one charge_shard of several
    label = f"{task_id}[{map_index}]" if mapped else task_id
    run_id = context.get("run_id") or getattr(ti, "run_id", None)
    exception = context.get("exception")
    error = f"{type(exception).__name__}: {exception}" if exception is not None else None
    reason = error or (
        "no exception: its process was lost (heartbeat timeout, killed) or it was marked failed"
    )
    return {
        "alert": "task_failed",
        "state": "firing",
        "dedup_key": f"task_failed.{dag_id}.{label}",
        "summary": f"{dag_id}.{label} failed in run {run_id}" + f": {reason[:300]}",
        "dag_id": dag_id,
        "task_id": task_id,
        "map_index": map_index if mapped else None,
        "run_id": run_id,
        "try_number": getattr(ti, "try_number", None),
        "exception": error[:_EXCEPTION_CHARS] if error else None,
    }
