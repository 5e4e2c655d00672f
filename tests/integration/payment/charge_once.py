"""Run one charging pass in a child process (the crash tests SIGKILL it).

``python charge_once.py PRICE_FEN [PHASE]``: with PHASE, the process kills
itself (SIGKILL) the first time the pass reaches that phase, through the
``on_phase`` callback of ``charge_valid_calls``. Reads the database from
``CHARGE_ONCE_TARGET`` (JSON of MySqlTarget fields) and the payment center
from the ``payment_api`` Airflow connection in the environment.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.payments.charging import ChargesPending, charge_valid_calls


def crash_at(phase: str | None):
    def on_phase(name: str) -> None:
        if name == phase:
            os.kill(os.getpid(), signal.SIGKILL)

    return on_phase


def main() -> int:
    target = MySqlTarget(**json.loads(os.environ["CHARGE_ONCE_TARGET"]))
    phase = sys.argv[2] if len(sys.argv) > 2 else None
    conn = connect(target)
    try:
        report = charge_valid_calls(
            conn, PaymentApiHook(timeout_ms=60000).get_async_conn(), price_fen=int(sys.argv[1]),
            workers=4, batch_size=2, flush_seconds=0.05, on_phase=crash_at(phase),
        )  # fmt: skip
    except ChargesPending as exc:
        print(exc)
        return 3
    print(json.dumps(report.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
