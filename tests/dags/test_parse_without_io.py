"""Parsing the DAG folder needs the outside world for nothing: no connection, Variable or socket.

The project's DAG files are parsed in a fresh interpreter whose every Airflow
connection points at a listener that counts TCP connections, with ``Variable.get``
and ``BaseHook.get_connection`` counted too. Next to them, a probe DAG file reads
a Variable and opens a MySQL connection of its own (to a second listener) while it
is parsed: the instruments must see the probe, and nothing else.
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
"""A DAG file that reaches out while it is parsed (what the instruments must see)."""
from datetime import UTC, datetime

from airflow.sdk import Variable, dag

from sublessor_airflow.hooks.mysql import user_prop_db

PRICE = Variable.get("io_probe_variable", default=None)
try:
    user_prop_db("io_probe_db").close()
except Exception:
    pass


@dag(dag_id="io_probe", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC))
def io_probe():
    pass


io_probe()
'''


def connections_to(port: int, probe_port: int) -> dict[str, dict]:
    """Every connection of the project at ``port``; the probe's own at ``probe_port``."""
    here = {"host": "127.0.0.1", "port": port, "login": "u", "password": "p"}
    connections = {
        conn_id: {"conn_type": "mysql", "schema": "db", **here}
        for conn_id in (config.ANJUKE_DB, config.USER_PROP_DB)
    }
    connections[config.CALL400_AMQP] = {"conn_type": "amqp", "schema": "/", **here}
    for conn_id in (config.PAYMENT_API, config.LISTING_API, config.K3_CLOUD):
        connections[conn_id] = {"conn_type": "http", **here, "host": "http://127.0.0.1"}
    connections["billing_alert_webhook"] = {"conn_type": "http", "host": f"http://127.0.0.1:{port}"}
    connections["io_probe_db"] = {**connections[config.USER_PROP_DB], "port": probe_port}
    return connections


def test_the_dag_files_parse_with_nothing_reachable_and_reach_for_nothing(tmp_path) -> None:
    folder = tmp_path / "dags"
    shutil.copytree(REPO / "dags", folder)
    (folder / "io_probe.py").write_text(PROBE_DAG)
    with ConnectionCounter() as project, ConnectionCounter() as probe:
        env = airflow_env(tmp_path / "home", connections=connections_to(project.port, probe.port))
        done = subprocess.run(
            [sys.executable, "-c", PARSE, str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        parsed = json.loads(done.stdout.strip().splitlines()[-1])
        project_connections, probe_connections = project.count, probe.count

    assert parsed["errors"] == {}
    assert set(parsed["dags"]) == DAG_IDS | {"io_probe"}
    # The instruments work: they saw the probe's Variable, connection and TCP connection ...
    assert {tuple(read) for read in parsed["reads"]} == {
        ("variable", "io_probe_variable"),
        ("connection", "io_probe_db"),
    }
    assert probe_connections >= 1
    # ... and nothing from the project's DAG files.
    assert project_connections == 0
