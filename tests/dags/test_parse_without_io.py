"""Parsing the DAG folder needs the outside world for nothing: no connection, Variable or socket.

The folder is parsed in a fresh interpreter whose every Airflow connection points at
a listener that counts TCP connections, with ``Variable.get`` and
``BaseHook.get_connection`` counted too. The parse must find every DAG and count
nothing; a probe DAG that does reach out proves the instruments see it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from support.airflow import REPO, airflow_env
from support.constants import DAG_IDS
from support.net import ConnectionCounter

from sublessor_billing import config

PARSE = """
import json, sys
from airflow.sdk import BaseHook, Variable

reads = []
variable_get, get_connection = Variable.get.__func__, BaseHook.get_connection.__func__

def counting_variable(cls, key, *args, **kwargs):
    reads.append(["variable", key])
    return variable_get(cls, key, *args, **kwargs)

def counting_connection(cls, conn_id):
    reads.append(["connection", conn_id])
    return get_connection(cls, conn_id)

Variable.get = classmethod(counting_variable)
BaseHook.get_connection = classmethod(counting_connection)

from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "dags": sorted(bag.dag_ids),
    "errors": {path: str(error)[-500:] for path, error in bag.import_errors.items()},
    "reads": reads,
}))
"""

PROBE_DAG = '''
"""A DAG file that reaches out while it is parsed (what the test must catch)."""
from datetime import UTC, datetime

from airflow.sdk import Variable, dag

from sublessor_airflow.hooks.mysql import user_prop_db

PRICE = Variable.get("payment_price_per_call", default=None)
try:
    user_prop_db().close()
except Exception:
    pass


@dag(dag_id="io_probe", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC))
def io_probe():
    pass


io_probe()
'''


def parse_folder(folder, home, port: int) -> dict:
    """Parse ``folder`` in a new interpreter with every connection pointing at ``port``."""
    here = {"host": "127.0.0.1", "port": port, "login": "u", "password": "p"}
    connections = {
        conn_id: {"conn_type": "mysql", "schema": "db", **here}
        for conn_id in (config.ANJUKE_DB, config.USER_PROP_DB)
    }
    connections[config.CALL400_AMQP] = {"conn_type": "amqp", "schema": "/", **here}
    for conn_id in (config.PAYMENT_API, config.LISTING_API, config.K3_CLOUD):
        connections[conn_id] = {"conn_type": "http", **here, "host": "http://127.0.0.1"}
    connections["billing_alert_webhook"] = {"conn_type": "http", "host": f"http://127.0.0.1:{port}"}
    env = airflow_env(home, connections=connections)
    done = subprocess.run(
        [sys.executable, "-c", PARSE, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_dag_folder_parses_with_nothing_reachable_and_reaches_for_nothing(tmp_path) -> None:
    with ConnectionCounter() as counter:
        parsed = parse_folder(REPO / "dags", tmp_path, counter.port)
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) == DAG_IDS
    assert parsed["reads"] == []
    assert counter.count == 0


def test_the_instruments_catch_a_dag_file_that_reaches_out(tmp_path) -> None:
    """The same parse, with a probe DAG file next to the project's: it is seen."""
    folder = tmp_path / "dags"
    shutil.copytree(REPO / "dags", folder)
    (folder / "io_probe.py").write_text(PROBE_DAG)
    with ConnectionCounter() as counter:
        parsed = parse_folder(folder, tmp_path / "home", counter.port)
    assert "io_probe" in parsed["dags"]
    assert ["variable", "payment_price_per_call"] in parsed["reads"]
    assert ["connection", "user_prop_db"] in parsed["reads"]
    assert counter.count >= 1  # the MySQL client connected (and was hung up on)
