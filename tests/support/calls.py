"""400 call messages as the platform publishes them (contracts/call400-message.md)."""

from __future__ import annotations

import json
from typing import Any

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
