"""Helpers of the 400 call integration tests: messages, publishing, reading the call log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pika

from sublessor_billing.db.connect import MySqlTarget, connect

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def call_body(call_id: str, **changes: Any) -> bytes:
    data = {
        "call_id": call_id,
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
    data.update(changes)
    return json.dumps(data).encode()


@dataclass
class Call400Env:
    """A fresh user_prop_db and queue, with Airflow connections pointing at them."""

    target: MySqlTarget
    names: dict[str, str]

    @property
    def queue(self) -> str:
        return self.names["queue"]

    def amqp_connection(self) -> dict:
        return {
            "conn_type": "amqp",
            "host": "127.0.0.1",
            "port": 5672,
            "login": "guest",
            "password": "guest",
            "schema": "/",
            "extra": json.dumps(self.names),
        }

    def publish(self, bodies: list[bytes]) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            channel = conn.channel()
            channel.confirm_delivery()
            for body in bodies:
                channel.basic_publish(self.names["exchange"], self.names["routing_key"], body)
        finally:
            conn.close()

    def ready(self) -> int:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            return conn.channel().queue_declare(self.queue, passive=True).method.message_count
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

    def purge(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            conn.channel().queue_purge(self.queue)
        finally:
            conn.close()
