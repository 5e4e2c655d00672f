"""RabbitMQ access for the 400 call queue (connection ``call400_amqp``), on pika."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from sublessor_billing.config import CALL400_AMQP

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)
# pika narrates every frame at INFO; keep task logs to what matters.
logging.getLogger("pika").setLevel(logging.WARNING)

TLS_PORT = 5671
_TRUE = {"1", "true", "yes", "on"}


class QueueMissing(LookupError):
    """The queue named by the connection does not exist on the broker."""


@dataclass(frozen=True)
class AmqpSettings:
    """What a ``call400_amqp`` connection says, read in one place."""

    conn_id: str
    host: str
    port: int
    vhost: str
    login: str
    password: str = field(repr=False)
    exchange: str
    exchange_type: str
    routing_key: str
    queue: str
    ssl: bool

    @classmethod
    def from_connection(cls, conn: Connection) -> AmqpSettings:
        extra = conn.extra_dejson or {}
        missing = [key for key in ("exchange", "routing_key", "queue") if not extra.get(key)]
        if missing:
            raise ValueError(
                f"Connection {conn.conn_id!r} lacks extra {', '.join(missing)}: set them in "
                "Admin -> Connections (exchange, exchange_type, routing_key, queue)."
            )
        port = int(conn.port or 5672)
        ssl = str(extra.get("ssl", "")).strip().lower() in _TRUE or port == TLS_PORT
        return cls(
            conn_id=conn.conn_id,
            host=conn.host or "localhost",
            port=port,
            vhost=conn.schema or "/",
            login=conn.login or "guest",
            password=conn.password or "",
            exchange=extra["exchange"],
            exchange_type=extra.get("exchange_type") or "direct",
            routing_key=extra["routing_key"],
            queue=extra["queue"],
            ssl=ssl,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.vhost}"

    def parameters(self, *, heartbeat: int = 60, socket_timeout: float = 10.0) -> Any:
        import pika

        ssl_options = None
        if self.ssl:
            import ssl as ssl_module

            ssl_options = pika.SSLOptions(ssl_module.create_default_context(), self.host)
        return pika.ConnectionParameters(
            host=self.host,
            port=self.port,
            virtual_host=self.vhost,
            credentials=pika.PlainCredentials(self.login, self.password),
            heartbeat=heartbeat,
            socket_timeout=socket_timeout,
            stack_timeout=socket_timeout * 3,
            blocked_connection_timeout=300,
            connection_attempts=1,
            ssl_options=ssl_options,
        )


def open_blocking(settings: AmqpSettings, **options: Any) -> Any:
    """Open a BlockingConnection, turning pika's failures into an error naming the connection."""
    import pika
    import pika.exceptions

    try:
        return pika.BlockingConnection(settings.parameters(**options))
    except pika.exceptions.AMQPError as exc:
        raise ConnectionError(
            f"Cannot connect to RabbitMQ connection {settings.conn_id!r} at {settings.where} "
            f"as {settings.login!r}: {type(exc).__name__} {exc}. Check that the broker is up and "
            f"the login, password and vhost in Admin -> Connections -> {settings.conn_id}."
        ) from None


def passive_message_count(channel: Any, queue: str) -> int:
    """Ready messages in ``queue`` without consuming; QueueMissing when it does not exist."""
    import pika.exceptions

    try:
        return channel.queue_declare(queue=queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            raise QueueMissing(queue) from None
        raise


class Call400AmqpHook(BaseHook):
    """One reused BlockingConnection to the broker of ``call400_amqp``."""

    conn_name_attr = "amqp_conn_id"
    default_conn_name = CALL400_AMQP
    conn_type = "amqp"
    hook_name = "RabbitMQ (400 calls)"

    def __init__(self, amqp_conn_id: str = default_conn_name, *, heartbeat: int = 60) -> None:
        super().__init__()
        self.amqp_conn_id = amqp_conn_id
        self.heartbeat = heartbeat
        self._settings: AmqpSettings | None = None
        self._connection: Any = None
        self._channel: Any = None

    @property
    def settings(self) -> AmqpSettings:
        if self._settings is None:
            self._settings = AmqpSettings.from_connection(self.get_connection(self.amqp_conn_id))
        return self._settings

    def get_conn(self) -> Any:
        """Return the open BlockingConnection, opening it on first use."""
        if self._connection is None or not self._connection.is_open:
            self._connection = open_blocking(self.settings, heartbeat=self.heartbeat)
            self._channel = None
            log.info("Connected to RabbitMQ %s (%s)", self.settings.where, self.amqp_conn_id)
        return self._connection

    def channel(self) -> Any:
        """Return the hook's channel, reopened when the broker closed it."""
        if self._channel is None or not self._channel.is_open:
            self._channel = self.get_conn().channel()
        return self._channel

    def ensure_topology(self) -> None:
        """Declare exchange and queue only when missing (an existing one is used as is); bind."""
        import pika.exceptions

        s = self.settings
        try:
            self.channel().exchange_declare(exchange=s.exchange, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            log.info(
                "Exchange %r not found on %s: declaring it (%s)",
                s.exchange,
                s.where,
                s.exchange_type,
            )
            self.channel().exchange_declare(
                exchange=s.exchange, exchange_type=s.exchange_type, durable=True
            )
        try:
            passive_message_count(self.channel(), s.queue)
        except QueueMissing:
            log.info("Queue %r not found on %s: declaring it durable", s.queue, s.where)
            self.channel().queue_declare(queue=s.queue, durable=True)
        self.channel().queue_bind(queue=s.queue, exchange=s.exchange, routing_key=s.routing_key)

    def message_count(self) -> int:
        """Messages ready in the queue (passive declare: nothing is consumed)."""
        return passive_message_count(self.channel(), self.settings.queue)

    def close(self) -> None:
        """Close the connection; unacknowledged deliveries go back to the queue."""
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.close()
            except Exception:  # closing a broken connection must not hide the real error
                log.warning(
                    "Closing the RabbitMQ connection %s failed", self.amqp_conn_id, exc_info=True
                )
        self._connection = None
        self._channel = None
