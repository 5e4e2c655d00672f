"""Run one charging pass in a child process (the crash tests SIGKILL it): ``python charge_once.py``.

Reads the database from ``CHARGE_ONCE_TARGET`` (JSON of MySqlTarget fields) and
the payment center from the ``payment_api`` Airflow connection in the environment.
"""

from __future__ import annotations

import json
import os
import sys

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.payments.charging import ChargesPending, charge_valid_calls


def main() -> int:
    target = MySqlTarget(**json.loads(os.environ["CHARGE_ONCE_TARGET"]))
    conn = connect(target)
    try:
        report = charge_valid_calls(
            conn, PaymentApiHook(timeout_ms=60000), price_fen=int(sys.argv[1]), workers=4,
            flush_seconds=0.05,
        )  # fmt: skip
    except ChargesPending as exc:
        print(exc)
        return 3
    print(json.dumps(report.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
