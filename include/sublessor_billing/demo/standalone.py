"""``airflow standalone`` on the project for tests and benchmarks: DAGs run under the scheduler.

LocalExecutor on SQLite in a temporary AIRFLOW_HOME, every user an admin (a
headless run needs no login), free ports for the api-server and both log
servers, the Task Execution API at the api-server's ``/execution/``. Waits until
the scheduler, dag-processor and triggerer are healthy; DAGs start paused, and
``unpause()`` waits until the DAG is parsed. Run and task states are read
through the REST API (never Airflow's metadata tables).

    with AirflowStandalone(REPO, env={"AIRFLOW_CONN_USER_PROP_DB": ...}) as airflow:
        airflow.unpause("call400_billing")
        airflow.wait_for_runs("call400_billing", lambda runs: len(runs) >= 2)
        airflow.dag_runs("call400_billing")   # oldest first: run_id, state, start/end
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sublessor_billing.demo.airflow_server import AIRFLOW, AirflowProcess
from sublessor_billing.demo.ports import free_port

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
FINISHED = ("success", "failed")


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time of the REST API (``...Z`` or ``+00:00``), None when absent."""
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00"))


class AirflowStandalone(AirflowProcess):
    """``airflow standalone`` (scheduler, dag-processor, triggerer, api-server) in its own group."""

    prefix = "billing-standalone-"

    def settings(self) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }

    def command(self) -> list[str]:
        return [str(AIRFLOW), "standalone"]

    def health(self) -> dict[str, Any]:
        status, body = self.request("GET", "/api/v2/monitor/health", timeout=5)
        return body if status == 200 and isinstance(body, dict) else {}

    def ready(self) -> bool:
        health = self.health()
        return all((health.get(name) or {}).get("status") == "healthy" for name in COMPONENTS)

    # -- DAGs and runs (dag_runs, dag_run, task_instances, unpause: ``RestApi``) ---------
    def wait_for_run_end(self, dag_id: str, run_id: str, *, timeout: float = 60) -> dict[str, Any]:
        """Poll one run until it is finished (success or failed); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if run.get("state") in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} not finished after {timeout} s: {run}")
            time.sleep(0.5)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The value of one XCom (None when absent)."""
        status, body = self.request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
        )
        return body.get("value") if status == 200 and isinstance(body, dict) else None

    def wait_for_runs(
        self,
        dag_id: str,
        done: Callable[[list[dict[str, Any]]], bool],
        *,
        timeout: float = 120,
        every: float = 1.0,
    ) -> list[dict[str, Any]]:
        """Poll ``dag_runs`` until ``done(runs)``; the runs (TimeoutError naming them otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.dag_runs(dag_id)
            if done(runs):
                return runs
            if time.monotonic() > deadline:
                states = [(r["dag_run_id"], r["state"]) for r in runs[-10:]]
                raise TimeoutError(f"{dag_id}: not done after {timeout} s; last runs {states}")
            time.sleep(every)

    def run_summary(self, dag_id: str, run: dict[str, Any]) -> dict[str, Any]:
        """A run's state and seconds; each task's state, try and when (s after the run started) it
        was scheduled, queued, started and ended: the gaps are Airflow's, the rest the task's."""
        began, ended = parse_time(run.get("start_date")), parse_time(run.get("end_date"))

        def offset(value: str | None) -> float | None:
            at = parse_time(value)
            return round((at - began).total_seconds(), 2) if at and began else None

        tasks = {
            ti["task_id"]: {
                "state": ti.get("state"),
                "try_number": ti.get("try_number"),
                **{k: offset(ti.get(f"{k}_when" if k != "start" else "start_date"))
                   for k in ("scheduled", "queued", "start")},
                "end": offset(ti.get("end_date")),
            }
            for ti in self.task_instances(dag_id, run["dag_run_id"])
        }  # fmt: skip
        return {
            "run_id": run["dag_run_id"],
            "state": run.get("state"),
            "seconds": (ended - began).total_seconds() if began and ended else None,
            "tasks": tasks,
        }
