"""Airflow's command line of this environment, run against the AIRFLOW_HOME an ``env`` names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
AIRFLOW = BIN / "airflow"


def run_airflow(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run an ``airflow`` command with ``env`` (its AIRFLOW_HOME and settings), output captured."""
    return subprocess.run(
        [str(AIRFLOW), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def migrate_metadata(env: dict[str, str]) -> None:
    """``airflow db migrate`` of the metadata database ``env`` points at; RuntimeError if it fails."""
    migrated = run_airflow(env, "db", "migrate")
    if migrated.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed: {migrated.stderr[-3000:]}")
