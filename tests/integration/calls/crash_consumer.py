"""Run intake in a child process and SIGKILL it at a chosen point (crash tests).

python crash_consumer.py before_commit|after_commit QUEUE HOST PORT USER DATABASE
"""

from __future__ import annotations

import os
import signal
import sys

import pika

from sublessor_billing.calls.intake import drain
from sublessor_billing.db.connect import MySqlTarget, connect

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt:
    """Proxy whose method ``name`` kills the process (before or after delegating)."""

    def __init__(self, inner, name: str, after: bool) -> None:
        self._inner, self._name, self._after = inner, name, after

    def __getattr__(self, attr):
        value = getattr(self._inner, attr)
        if attr != self._name:
            return value

        def fatal(*args, **kwargs):
            if not self._after:
                die()
            value(*args, **kwargs)
            die()

        return fatal


def main() -> None:
    mode, queue, host, port, user, database = sys.argv[1:7]
    conn = connect(MySqlTarget(host=host, port=int(port), user=user, database=database))
    channel = pika.BlockingConnection(pika.URLParameters(AMQP_URL)).channel()
    if mode == "before_commit":
        conn = KillAt(conn, "commit", after=False)
    elif mode == "after_commit":
        # The commit happened; the process dies as it is about to acknowledge.
        channel = KillAt(channel, "basic_ack", after=False)
    # The first batch is 20 messages, whatever the machine's load: no time-based flush.
    drain(
        channel,
        queue,
        conn,
        max_messages=10_000,
        batch_size=20,
        idle_seconds=60,
        max_batch_age=3600,
    )
    sys.exit(3)  # reaching here means the kill point was never hit


if __name__ == "__main__":
    main()
