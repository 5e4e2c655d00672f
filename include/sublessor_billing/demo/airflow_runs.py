"""Run DAGs the way runtime.md describes: `airflow dags test <dag_id>` in a prepared environment."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sublessor_billing.demo.environment import DEMO_DIR, REPO

AIRFLOW = REPO / ".venv" / "bin" / "airflow"


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    state: str
    seconds: float
    log: Path
    task_states: dict[str, str]

    def line(self) -> str:
        tasks = ", ".join(f"{t}={s}" for t, s in self.task_states.items())
        return f"{self.dag_id:<20} {self.state:<8} {self.seconds:6.1f}s  [{tasks}]"


def migrate_metadata(env: dict[str, str]) -> None:
    log = DEMO_DIR / "logs" / "airflow-db-migrate.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        subprocess.run(
            [str(AIRFLOW), "db", "migrate"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )


def run_dag(
    dag_id: str, env: dict[str, str], *, conf: dict | None = None, label: str = ""
) -> RunResult:
    logs = DEMO_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{dag_id}{'-' + label if label else ''}.log"
    cmd = [str(AIRFLOW), "dags", "test", dag_id]
    if conf:
        cmd += ["--conf", json.dumps(conf)]
    started = time.monotonic()
    with log.open("w") as out:
        subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    state, tasks = _last_run_states(Path(env["AIRFLOW_HOME"]) / "airflow.db", dag_id)
    return RunResult(dag_id, state, seconds, log, tasks)


def _last_run_states(db: Path, dag_id: str) -> tuple[str, dict[str, str]]:
    """Read the run's outcome from the metadata database (the exit code does not carry it)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
        if row is None:
            return "no run", {}
        tasks = dict(
            conn.execute(
                "SELECT task_id, COALESCE(state, 'none')"
                " || CASE WHEN try_number > 1 THEN ' (try ' || try_number || ')' ELSE '' END"
                " FROM task_instance"
                " WHERE dag_id = ? AND run_id = ? ORDER BY priority_weight DESC, task_id",
                (dag_id, row[0]),
            ).fetchall()
        )
        return str(row[1]), tasks
    finally:
        conn.close()
