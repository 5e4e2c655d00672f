"""call400_billing as a live service on loopback: what the live test and bench_live.py share.

The environment of an ``AirflowStandalone`` running the project against a
user_prop_db, a queue and the sandbox payment center and listing service; the
400 platform's side (declaring the queue, publishing valid calls); and what
was charged, read from the payment log with the moment each order settled.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sublessor_billing.db.connect import MySqlTarget, connect

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


@dataclass(frozen=True)
class Service:
    """A sandbox as an Airflow HTTP connection: its port, app id and key."""

    port: int
    login: str
    password: str

    def connection(self) -> str:
        return json.dumps(
            {"conn_type": "http", "host": "http://127.0.0.1", "port": self.port,
             "login": self.login, "password": self.password}
        )  # fmt: skip


def billing_env(
    user_prop: MySqlTarget,
    amqp: dict[str, str],
    payment: Service,
    listing: Service,
    variables: dict[str, object] | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` for call400_billing (``extra``: more of them)."""
    env = {
        "AIRFLOW_CONN_USER_PROP_DB": json.dumps(user_prop.airflow_connection()),
        "AIRFLOW_CONN_CALL400_AMQP": json.dumps(
            {
                "conn_type": "amqp",
                "host": "127.0.0.1",
                "port": 5672,
                "login": "guest",
                "password": "guest",
                "schema": "/",
                "extra": json.dumps(amqp),
            }
        ),  # fmt: skip
        "AIRFLOW_CONN_PAYMENT_API": payment.connection(),
        "AIRFLOW_CONN_LISTING_API": listing.connection(),
    }
    for name, value in (variables or {}).items():
        env[f"AIRFLOW_VAR_{name.upper()}"] = str(value)
    return {**env, **(extra or {})}


def declare_queue(amqp: dict[str, str]) -> None:
    """What our consumer declares on a test broker: the exchange, the durable queue, the binding."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        ch.exchange_declare(amqp["exchange"], exchange_type=amqp["exchange_type"], durable=True)
        ch.queue_declare(amqp["queue"], durable=True)
        ch.queue_bind(amqp["queue"], amqp["exchange"], routing_key=amqp["routing_key"])
    finally:
        conn.close()


def delete_queue(amqp: dict[str, str]) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        ch.queue_delete(amqp["queue"])
        ch.exchange_delete(amqp["exchange"])
    finally:
        conn.close()


def valid_call(call_id: str, sublessor_id: int, n: int) -> bytes:
    """A connected call long enough to be valid, from a caller of its own (no repeat)."""
    return json.dumps(
        {"call_id": call_id, "sublessor_id": sublessor_id, "prop_id": 1,
         "caller": f"15{n % 10**9:09d}", "called": "4008123456", "ext": "", "status": 1,
         "start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 60)),
         "duration": 95, "call_type": "normal"}
    ).encode()  # fmt: skip


def publish(amqp: dict[str, str], bodies: Iterable[bytes]) -> float:
    """Publish with confirms, as the 400 platform does; the time (epoch s) they were all confirmed."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        for body in bodies:
            ch.basic_publish(amqp["exchange"], amqp["routing_key"], body, properties=props)
        return time.time()
    finally:
        conn.close()


@dataclass(frozen=True)
class Order:
    order_id: int
    status: str
    settled_at: float | None  # epoch seconds (the database's clock, on this machine)


def orders(target: MySqlTarget) -> dict[str, list[Order]]:
    """call_id -> its payment log rows (exactly one each when nothing went wrong)."""
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT call_id, id, status, UNIX_TIMESTAMP(settled_at)"
                " FROM sublessor_call_payment_log_201409"
            )
            rows: dict[str, list[Order]] = {}
            for call_id, order_id, status, settled in cur.fetchall():
                settled_at = None if settled is None else float(settled)
                rows.setdefault(call_id, []).append(Order(int(order_id), status, settled_at))
        conn.rollback()
        return rows
    finally:
        conn.close()


def check_charged_once(
    rows: dict[str, list[Order]], ledger: dict[Any, int], call_ids: Iterable[str]
) -> list[str]:
    """What is wrong (empty: every call has one successful order, charged once by the ledger)."""
    wrong = []
    for call_id in call_ids:
        found = rows.get(call_id, [])
        if len(found) != 1 or found[0].status != "success":
            wrong.append(f"{call_id}: {[(o.order_id, o.status) for o in found]}")
        elif int(ledger.get(found[0].order_id, ledger.get(str(found[0].order_id), 0))) != 1:
            wrong.append(f"{call_id}: order {found[0].order_id} moved money "
                         f"{ledger.get(found[0].order_id, 0)} time(s)")  # fmt: skip
    return wrong
