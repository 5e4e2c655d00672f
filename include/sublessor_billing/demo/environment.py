"""Demo databases, queue and Airflow settings on the local MariaDB and RabbitMQ."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_external_ddl
from sublessor_billing.db.tables import CONTRACT
from sublessor_billing.demo import connections
from sublessor_billing.demo.scenario import Scenario

REPO = Path(__file__).resolve().parents[3]
DEMO_DIR = REPO / ".demo"


@dataclass(frozen=True)
class DemoNames:
    anjuke_db: str = "sublessor_demo_anjuke_db"
    user_prop_db: str = "sublessor_demo_user_prop_db"
    exchange: str = "sublessor_demo.400_postcallinfo"
    routing_key: str = "400.postcallinfo.dyz"
    queue: str = "sublessor_demo.call400"


def mysql_server() -> MySqlTarget:
    return connections.mysql_server("DEMO")


def amqp_url() -> str:
    return os.environ.get("DEMO_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def recreate_databases(server: MySqlTarget, names: DemoNames) -> tuple[MySqlTarget, MySqlTarget]:
    """Start from empty databases so every demo tells the same story."""
    admin = connect(server)
    with admin.cursor() as cur:
        for db in (names.anjuke_db, names.user_prop_db):
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
    admin.close()
    anjuke, user_prop = (
        server.with_database(names.anjuke_db),
        server.with_database(names.user_prop_db),
    )
    for target, ddl in ((anjuke, "anjuke_db"), (user_prop, "user_prop_db")):
        conn = connect(target)
        apply_external_ddl(conn, ddl)
        conn.close()
    return anjuke, user_prop


def seed_sources(anjuke: MySqlTarget, user_prop: MySqlTarget, sc: Scenario) -> None:
    """Brokers in the broker system and contracts in CRM (the project's tables stay empty)."""
    conn = connect(anjuke)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ajk_brokerextend (BrokerId, UserMobile, TrueName) VALUES (%s, %s, %s)",
            sc.brokers,
        )
    conn.commit()
    conn.close()
    conn = connect(user_prop)
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {CONTRACT} (sublessor_id, contract_no, total_amount, balance,"
            " start_date, end_date, status, signed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    c.sublessor_id,
                    c.contract_no,
                    c.total_amount,
                    c.total_amount,
                    c.start_date,
                    c.end_date,
                    c.status,
                    c.start_date,
                )
                for c in sc.contracts
            ],
        )
    conn.commit()
    conn.close()


def reset_queue_and_publish(names: DemoNames, messages: list[bytes]) -> None:
    """Play the 400 platform: a fresh queue bound to its exchange, then a day of calls."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
    ch = conn.channel()
    ch.queue_delete(names.queue)
    ch.exchange_declare(names.exchange, exchange_type="direct", durable=True)
    ch.queue_declare(names.queue, durable=True)
    ch.queue_bind(names.queue, names.exchange, routing_key=names.routing_key)
    ch.confirm_delivery()
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    for body in messages:
        ch.basic_publish(names.exchange, names.routing_key, body, properties=props)
    conn.close()


def queue_depth(names: DemoNames) -> int:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
    try:
        return conn.channel().queue_declare(names.queue, passive=True).method.message_count
    finally:
        conn.close()


def airflow_env(
    names: DemoNames,
    server: MySqlTarget,
    services: dict[str, dict[str, Any]],
    variables: dict[str, object],
) -> dict[str, str]:
    """Environment for `airflow dags test`: connections and Variables, as an operator would set them."""
    home = DEMO_DIR / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
    )

    def mysql(db: str) -> str:
        return json.dumps(server.with_database(db).airflow_connection())

    env["AIRFLOW_CONN_ANJUKE_DB"] = mysql(names.anjuke_db)
    env["AIRFLOW_CONN_USER_PROP_DB"] = mysql(names.user_prop_db)
    amqp_names = {"exchange": names.exchange, "exchange_type": "direct",
                  "routing_key": names.routing_key, "queue": names.queue}  # fmt: skip
    env["AIRFLOW_CONN_CALL400_AMQP"] = json.dumps(connections.amqp_connection(amqp_names))
    for conn_id, conn in services.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    for name, value in variables.items():
        env[f"AIRFLOW_VAR_{name.upper()}"] = str(value)
    return env
