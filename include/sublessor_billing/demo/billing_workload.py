"""A live billing workload for a running Airflow: its database, queue, sandboxes and checks.

``BillingWorkload.create()`` makes a fresh, uniquely named ``user_prop_db`` on the
local MariaDB (migrations applied, the history's end recorded as a pass does,
CRM's contract table created), a unique
exchange and queue on the local RabbitMQ, and the sandbox payment center and
listing service in this process (accounts with ample balance, optional latency).
``airflow_env()`` is what every Airflow process needs to reach them (connections
and Variables as ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*``). ``publish()`` plays the
400 platform (valid calls, one caller each, spread over the sublessors);
``verify()`` compares the payment log with the sandbox ledger. ``drop()`` removes
everything. Executor-agnostic: a LocalExecutor or CeleryExecutor deployment runs it.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sublessor_billing import config
from sublessor_billing.calls.message import intake_clock
from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.db.migrate import apply_external_ddl, apply_migrations
from sublessor_billing.db.tables import PAYMENT_LOG
from sublessor_billing.demo.connections import (
    APP_ID,
    amqp_connection,
    mysql_server,
    signed_http_connection,
)
from sublessor_billing.payments import flags
from sublessor_billing.sandbox.listing_service import ListingService
from sublessor_billing.sandbox.payment_center import PaymentCenter

PAYMENT_KEY, LISTING_KEY = "workload-payment-key", "workload-listing-key"
PRICE_FEN = int(config.PAYMENT_PRICE_PER_CALL.default) * 100
FIRST_SUBLESSOR = 30001
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass
class BillingWorkload:
    target: MySqlTarget
    amqp_url: str
    names: dict[str, str]
    sublessors: int
    payment: PaymentCenter
    listing: ListingService
    published: dict[str, float] = field(default_factory=dict)  # call id -> publish time

    @classmethod
    def create(
        cls,
        server: MySqlTarget | None = None,
        amqp_url: str | None = None,
        *,
        sublessors: int = 4,
        latency_ms: float = 0,
        seed: int = 0,
    ) -> BillingWorkload:
        """Defaults: the local services, or TEST_MYSQL_* / TEST_AMQP_URL as the tests read them."""
        server = server or mysql_server("TEST")
        amqp_url = amqp_url or os.environ.get("TEST_AMQP_URL", LOCAL_AMQP_URL)
        tag = secrets.token_hex(4)
        database = f"t_workload_{tag}"
        admin = connect(server)
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        admin.close()
        target = server.with_database(database)
        conn = connect(target)
        try:
            apply_migrations(conn)
            apply_external_ddl(conn, "user_prop_db")
            flags.flag_history(conn)  # as after any pass: with nothing to do, a run is idle
        finally:
            conn.close()
        names = {"exchange": f"t_workload_ex_{tag}", "exchange_type": "direct",
                 "routing_key": f"t_workload_rk_{tag}", "queue": f"t_workload_q_{tag}"}  # fmt: skip
        payment = PaymentCenter({APP_ID: PAYMENT_KEY}, seed=seed).start()  # seed: its faults
        listing = ListingService({APP_ID: LISTING_KEY}).start()
        payment.configure(latency_ms=latency_ms)
        workload = cls(target, amqp_url, names, sublessors, payment, listing)
        workload._declare_queue()
        return workload

    def fund(self, calls_each: int) -> None:
        """Give every sublessor enough for ``calls_each`` calls and one more (nobody goes offline)."""
        for s in range(self.sublessors):
            self.payment.set_account(FIRST_SUBLESSOR + s, (calls_each + 1) * PRICE_FEN)

    def airflow_env(self, variables: dict[str, object] | None = None) -> dict[str, str]:
        connections = {
            "user_prop_db": self.target.airflow_connection(),
            "call400_amqp": amqp_connection(self.names),
            "payment_api": signed_http_connection(self.payment.url, PAYMENT_KEY),
            "listing_api": signed_http_connection(self.listing.url, LISTING_KEY),
        }
        env = {f"AIRFLOW_CONN_{cid.upper()}": json.dumps(c) for cid, c in connections.items()}
        for name, value in (variables or {}).items():
            env[f"AIRFLOW_VAR_{name.upper()}"] = str(value)
        return env

    # -- the 400 platform -------------------------------------------------------------------
    def publish(self, count: int) -> list[str]:
        """Publish ``count`` valid calls (publisher confirms); their call ids."""
        import pika

        start = len(self.published)
        now = intake_clock()
        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        ids = []
        try:
            channel = conn.channel()
            channel.confirm_delivery()
            for n in range(start, start + count):
                call_id = f"w-{n:07d}"
                body = {"call_id": call_id, "sublessor_id": FIRST_SUBLESSOR + n % self.sublessors,
                        "prop_id": 0, "caller": f"138{n:08d}", "called": "4008123456",
                        "status": 1, "duration": 60,
                        "start_time": (now - timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
                channel.basic_publish(
                    self.names["exchange"], self.names["routing_key"], json.dumps(body).encode()
                )
                self.published[call_id] = time.time()
                ids.append(call_id)
        finally:
            conn.close()
        return ids

    def queued(self) -> int:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            return (
                conn.channel().queue_declare(self.names["queue"], passive=True).method.message_count
            )
        finally:
            conn.close()

    # -- what happened ------------------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = connect(self.target)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def statuses(self) -> dict[str, int]:
        """Rows of the payment log per status."""
        rows = self.query(f"SELECT status, COUNT(*) FROM {PAYMENT_LOG} GROUP BY status")
        return {status: int(n) for status, n in rows}

    def charge_times(self, call_ids: Iterable[str] | None = None) -> list[tuple[float, float]]:
        """(published, charged) epoch seconds of every call published here (of ``call_ids``) and charged."""
        wanted = self.published if call_ids is None else set(call_ids)
        rows = self.query(
            f"SELECT call_id, UNIX_TIMESTAMP(settled_at) FROM {PAYMENT_LOG} WHERE status = 'success'"
        )
        return [(self.published[c], float(t)) for c, t in rows if c in wanted]

    def settled(self, call_ids: Iterable[str]) -> bool:
        """Whether each of ``call_ids`` has an order that is no longer pending."""
        done = {
            c for c, s in self.query(f"SELECT call_id, status FROM {PAYMENT_LOG}") if s != "pending"
        }
        return set(call_ids) <= done

    def verify(self) -> dict[str, Any]:
        """The payment log against the sandbox ledger: every published call charged once."""
        rows = self.query(f"SELECT id, call_id, status FROM {PAYMENT_LOG}")
        success = {int(i): c for i, c, s in rows if s == "success"}
        with self.payment.lock:
            ledger = dict(self.payment.ledger)
            state = self.payment.state()
        return {
            "published": len(self.published),
            "charged": len(success),
            "not_charged": sorted(set(self.published) - set(success.values())),
            "not_success": sorted((c, s) for _, c, s in rows if s != "success"),
            "double_charges": len(state["double_charged"]),
            "ledger_charges": state["charges"],
            "ledger_without_row": sorted(set(ledger) - set(success)),
            "rows_without_charge": sorted(i for i in success if ledger.get(i) != 1),
            "charged_fen": state["charged_fen"],
        }

    # -- cleaning up --------------------------------------------------------------------------
    def drop(self) -> None:
        import pika

        self.payment.stop()
        self.listing.stop()
        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = conn.channel()
            channel.queue_delete(self.names["queue"])
            channel.exchange_delete(self.names["exchange"])
        finally:
            conn.close()
        admin = connect(self.target.with_database(""))
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.target.database}`")
        admin.close()

    def _declare_queue(self) -> None:
        """What the 400 platform and an operator provide: the exchange, our queue, the binding."""
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = conn.channel()
            channel.exchange_declare(self.names["exchange"], exchange_type="direct", durable=True)
            channel.queue_declare(self.names["queue"], durable=True)
            channel.queue_bind(
                self.names["queue"], self.names["exchange"], routing_key=self.names["routing_key"]
            )
        finally:
            conn.close()
