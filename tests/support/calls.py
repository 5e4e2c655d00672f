"""400 call messages (contracts/call400-message.md), the queue and database they go to, drains."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pika

from sublessor_billing.db.connect import MySqlTarget, connect
from support.amqp import AMQP_URL, publish, queued
from support.connections import LISTING_KEY, PAYMENT_KEY, amqp_connection, signed_http_connection

GOOD_CALL = {
    "call_id": "c1",
    "sublessor_id": 10086,
    "prop_id": 552301,
    "caller": "+86 138-0013-8000",
    "called": "4008123456",
    "ext": "2301",
    "status": 1,
    "start_time": "2026-03-01 10:15:02",
    "duration": 95,
    "call_type": "normal",
}


def call_body(call_id: str, **changes: Any) -> bytes:
    """A valid message body for ``call_id``, with fields changed as given."""
    data = dict(GOOD_CALL, call_id=call_id)
    data.update(changes)
    return json.dumps(data).encode()


# A drain in a test ends on its count; this much silence means messages were lost.
IDLE_SAFETY_S = 30.0


def drain_queued(env: Any, channel: Any, conn: Any, **options: Any):
    """Drain exactly what is queued now (or the cap given, if lower), then stop.

    The count ends the drain, not a silence: a broker slow to deliver on a busy
    machine cannot end it early. ``env`` has ``ready()`` and ``queue``.
    """
    from sublessor_billing.calls.intake import drain

    queued = env.ready()
    cap = min(options.pop("max_messages", queued), queued)
    return drain(channel, env.queue, conn, max_messages=cap, idle_seconds=IDLE_SAFETY_S, **options)


@dataclass
class Call400Env:
    """A fresh user_prop_db and queue (the ``call400`` fixture), and what tests do with them."""

    target: MySqlTarget
    names: dict[str, str]

    @property
    def queue(self) -> str:
        return self.names["queue"]

    def amqp_connection(self) -> dict:
        """The Airflow ``call400_amqp`` connection for this exchange and queue."""
        return amqp_connection(self.names)

    def billing_connections(
        self, payment: Any, listing: Any, payment_key: str = PAYMENT_KEY
    ) -> dict:
        """The four Airflow connections of ``call400_billing`` against these sandboxes."""
        return {
            "call400_amqp": self.amqp_connection(),
            "user_prop_db": self.target.airflow_connection(),
            "payment_api": signed_http_connection(payment.url, payment_key),
            "listing_api": signed_http_connection(listing.url, LISTING_KEY),
        }

    def publish(self, bodies: list[bytes]) -> None:
        """Publish in order, each body confirmed by the broker (queued when this returns)."""
        publish(self.names["exchange"], self.names["routing_key"], bodies)

    def ready(self) -> int:
        return queued(self.queue)

    def purge(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            conn.channel().queue_purge(self.queue)
        finally:
            conn.close()

    def db(self) -> Any:
        return connect(self.target)

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        conn = self.db()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def execute(self, *statements: str) -> None:
        """Run statements on a fresh connection and commit."""
        conn = self.db()
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
            conn.commit()
        finally:
            conn.close()
