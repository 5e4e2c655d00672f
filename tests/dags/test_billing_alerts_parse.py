"""Parsing billing_alerts imports neither the checks nor a MySQL client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_parsing_the_dag_file_imports_no_checks_nor_mysql() -> None:
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(DAGS / 'billing_alerts.py')!r})\n"
        "loaded = [m for m in ('sublessor_airflow.alerts.checks', 'MySQLdb',"
        " 'sublessor_billing.ops.summary') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
