"""Run Airflow's command line the way runtime.md does: ``airflow dags test`` in a prepared home.

One Airflow home serves the whole test run (``tests/conftest.py`` sets it and
the ``airflow_home`` fixture migrates it once); each run gets its connections and
Variables through ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` in its environment.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).parent / "airflow"


def airflow_env(
    home: Path | str,
    *,
    connections: dict[str, dict | str] | None = None,
    variables: dict[str, object] | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of an ``airflow`` command on this checkout, in ``home``."""
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        # This checkout's packages first, whatever the virtualenv's .pth points at.
        PYTHONPATH=os.pathsep.join([str(REPO / "include"), str(REPO / "plugins"), str(REPO)]),
    )
    for conn_id, value in (connections or {}).items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
    for name, value in (variables or {}).items():
        env[f"AIRFLOW_VAR_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def run_airflow(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(AIRFLOW), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def migrate(home: Path | str) -> None:
    """``airflow db migrate`` in ``home`` (its metadata database is SQLite)."""
    done = run_airflow(airflow_env(home), "db", "migrate")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@dataclass(frozen=True)
class DagRun:
    """What one ``airflow dags test`` did, read back from the metadata database."""

    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str]
    output: str
    returncode: int

    def xcom(self, home: Path | str, task_id: str, key: str = "return_value") -> Any:
        return xcom(home, self.dag_id, self.run_id, task_id, key)


def dags_test(
    env: dict[str, str],
    dag_id: str,
    *,
    conf: dict | None = None,
    mark_success_pattern: str | None = None,
    timeout: float = 300,
) -> DagRun:
    """One ``airflow dags test`` run; its state and task states come from the metadata database."""
    args = ["dags", "test", dag_id]
    if conf is not None:
        args += ["--conf", json.dumps(conf)]
    if mark_success_pattern:
        args += ["--mark-success-pattern", mark_success_pattern]
    done = run_airflow(env, *args, timeout=timeout)
    output = done.stdout + done.stderr
    run_id, state, tasks = last_run(env["AIRFLOW_HOME"], dag_id)
    return DagRun(dag_id, run_id, state, tasks, output, done.returncode)


def _metadata(home: Path | str) -> sqlite3.Connection:
    return sqlite3.connect(Path(home) / "airflow.db", timeout=30)


def last_run(home: Path | str, dag_id: str) -> tuple[str, str, dict[str, str]]:
    """(run_id, state, {task_id: state}) of the newest run of ``dag_id``."""
    conn = _metadata(home)
    try:
        row = conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        if row is None:
            return "", "no run", {}
        tasks = dict(
            conn.execute(
                "SELECT task_id, COALESCE(state, 'none') FROM task_instance"
                " WHERE dag_id = ? AND run_id = ?",
                (dag_id, row[0]),
            ).fetchall()
        )
        return row[0], str(row[1]), tasks
    finally:
        conn.close()


def xcom(home: Path | str, dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
    """The XCom a task pushed (JSON-decoded), or None."""
    conn = _metadata(home)
    try:
        row = conn.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
            (dag_id, run_id, task_id, key),
        ).fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    value = row[0]
    return json.loads(value) if isinstance(value, str | bytes) else value
