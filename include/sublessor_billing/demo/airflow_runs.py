"""Run DAGs the way runtime.md describes: `airflow dags test <dag_id>` in a prepared environment.

What a run ended as is read through the CLI's JSON output, as any client of
Airflow would (never from the metadata database's tables).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    state, tasks = last_run_states(env, dag_id)
    return RunResult(dag_id, state, seconds, log, tasks)


def last_run_states(
    env: dict[str, str], dag_id: str, *, airflow: Path = AIRFLOW
) -> tuple[str, dict[str, str]]:
    """The newest run's state and its tasks' states, from the CLI (the exit code does not carry it).

    ``airflow dags list-runs`` and ``airflow tasks states-for-dag-run`` with ``-o json``:
    Airflow's public interface, never its metadata database's schema.
    """
    runs = airflow_json(env, airflow, "dags", "list-runs", dag_id)
    if not runs:
        return "no run", {}
    run = max(runs, key=lambda r: (r.get("run_after") or "", r.get("start_date") or ""))
    tasks = airflow_json(env, airflow, "tasks", "states-for-dag-run", dag_id, run["run_id"])
    return str(run["state"]), {t["task_id"]: t.get("state") or "none" for t in tasks}


def airflow_json(env: dict[str, str], airflow: Path, *args: str) -> Any:
    """Run ``airflow <args> -o json`` and return its answer (warnings may precede it on stdout)."""
    command = ["airflow", *args, "-o", "json"]
    done = subprocess.run(
        [str(airflow), *command[1:]], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed (exit {done.returncode}): {done.stderr[-2000:]}"
        )
    return parse_cli_json(done.stdout, " ".join(command))


def parse_cli_json(stdout: str, command: str = "airflow") -> Any:
    """The JSON document a CLI command printed, after whatever warnings came first."""
    offset = 0
    for line in stdout.splitlines(keepends=True):
        if line.lstrip().startswith(("[", "{")):
            try:
                return json.JSONDecoder().raw_decode(
                    stdout, offset + len(line) - len(line.lstrip())
                )[0]
            except ValueError:
                pass  # a warning that happens to start with a bracket
        offset += len(line)
    raise RuntimeError(f"{command} printed no JSON: {stdout[-2000:]!r}")
