"""Shared fixtures: a private Airflow home, fresh MariaDB databases and RabbitMQ names per test.

Integration tests talk to the real MariaDB (127.0.0.1:3306) and RabbitMQ
(127.0.0.1:5672) on the machine; every database, exchange and queue they
create has a unique name and is dropped afterwards.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Airflow reads its configuration at import time: settle it before any test imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="sublessor-airflow-test-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

from support.amqp import AMQP_URL  # noqa: E402
from support.db import MYSQL, unique_name  # noqa: E402

from sublessor_billing.db.connect import MySqlTarget, connect  # noqa: E402
from sublessor_billing.db.migrate import apply_external_ddl, apply_migrations  # noqa: E402

# Tests that start a whole Airflow deployment (scheduler, workers, triggerer) and wait on
# its clocks: under pytest-xdist they run one after another on one worker (``make test``
# uses ``--dist loadgroup``), so that two of them never share the machine's two cores.
DEPLOYMENT_DIRS = ("tests/integration/celery/", "tests/integration/live/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``airflow`` every test that runs Airflow itself (it uses the test run's home)."""
    for item in items:
        if {"airflow_home", "serialized_dags"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.airflow)
        if Path(item.path).relative_to(REPO).as_posix().startswith(DEPLOYMENT_DIRS):
            item.add_marker(pytest.mark.xdist_group("deployment"))


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The test run's Airflow home (this process uses it too), its metadata database migrated once.

    Tests that run ``airflow dags test`` share it (``support.airflow.airflow_env``); each
    run brings its own connections and Variables in its environment.
    """
    from support.airflow import migrate

    migrate(_AIRFLOW_HOME)
    return Path(_AIRFLOW_HOME)


@pytest.fixture(scope="session")
def serialized_dags(airflow_home) -> Path:
    """The test run's Airflow home with every DAG of ``dags/`` parsed into its metadata database.

    What the scheduler reads: DagModel rows (timetable, next run), asset references.
    """
    from support.airflow import airflow_env, run_airflow

    done = run_airflow(airflow_env(airflow_home), "dags", "reserialize")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return airflow_home


@pytest.fixture
def database_factory() -> Iterator[Callable[[str], MySqlTarget]]:
    """Create fresh, uniquely named databases; drop them after the test."""
    created: list[str] = []
    admin = connect(MYSQL)

    def make(prefix: str = "db") -> MySqlTarget:
        name = unique_name(prefix)
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        created.append(name)
        return MYSQL.with_database(name)

    yield make
    with admin.cursor() as cur:
        for name in created:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


@pytest.fixture
def user_prop_target(database_factory) -> MySqlTarget:
    """A fresh ``user_prop_db``: project migrations applied, CRM's contract table created."""
    target = database_factory("userprop")
    conn = connect(target)
    try:
        apply_migrations(conn)
        apply_external_ddl(conn, "user_prop_db")
    finally:
        conn.close()
    return target


@pytest.fixture
def anjuke_target(database_factory) -> MySqlTarget:
    """A fresh ``anjuke_db`` with the broker system's ``ajk_brokerextend`` table."""
    target = database_factory("anjuke")
    conn = connect(target)
    try:
        apply_external_ddl(conn, "anjuke_db")
    finally:
        conn.close()
    return target


@pytest.fixture
def user_prop_conn(user_prop_target):
    """A connection to ``user_prop_target``, closed after the test."""
    conn = connect(user_prop_target)
    yield conn
    conn.close()


@pytest.fixture
def amqp_names() -> Iterator[dict[str, str]]:
    """Unique exchange / queue / routing key; deleted from the broker afterwards."""
    import pika

    names = {
        "exchange": unique_name("ex"),
        "exchange_type": "direct",
        "routing_key": unique_name("rk"),
        "queue": unique_name("q"),
    }
    yield names
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        ch.queue_delete(names["queue"])
        ch.exchange_delete(names["exchange"])
    finally:
        conn.close()


@pytest.fixture
def airflow_connections(monkeypatch) -> Callable[..., None]:
    """Define Airflow connections through AIRFLOW_CONN_* environment variables."""

    def define(conn_id: str, value: dict | str) -> None:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            value if isinstance(value, str) else json.dumps(value),
        )

    return define


@pytest.fixture
def airflow_variables(monkeypatch) -> Callable[[str, object], None]:
    """Define Airflow Variables through AIRFLOW_VAR_* environment variables."""

    def define(name: str, value: object) -> None:
        monkeypatch.setenv(f"AIRFLOW_VAR_{name.upper()}", str(value))

    return define
