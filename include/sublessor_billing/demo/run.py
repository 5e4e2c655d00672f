"""`make demo`: one sample day through all four DAGs, then a report.

1. Fresh demo databases on the local MariaDB: brokers (anjuke_db) and contracts (CRM).
2. Sandbox payment center, listing service and K3 Cloud on loopback ports.
3. `broker_phone_sync` (full resync), so broker callers are recognised.
4. A day of 400 calls published to RabbitMQ, then `call400_billing` until the
   queue is drained and every charge settled (the payment center fails a few
   requests on purpose: the retries settle them with the same order ids).
5. `accounting_income`, then `k3_contract_export`.
"""

from __future__ import annotations

import sys
import time

from sublessor_billing.demo import environment as envmod
from sublessor_billing.demo.airflow_runs import RunResult, migrate_metadata, run_dag
from sublessor_billing.demo.report import render
from sublessor_billing.demo.scenario import build
from sublessor_billing.sandbox.__main__ import SERVERS, airflow_conn
from sublessor_billing.sandbox.server import Fault

MAX_BILLING_RUNS = 4


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def main() -> int:
    started = time.monotonic()
    names = envmod.DemoNames()
    server = envmod.mysql_server()
    scenario = build()

    say(
        f"creating databases {names.anjuke_db} and {names.user_prop_db} on {server.host}:{server.port}"
    )
    anjuke, user_prop = envmod.recreate_databases(server, names)
    envmod.seed_sources(anjuke, user_prop, scenario)
    say(f"seeded {len(scenario.brokers)} brokers and {len(scenario.contracts)} contracts")

    sandboxes = {spec.name: (spec, spec.factory(spec)) for spec in SERVERS}
    payment, listing, k3 = (sandboxes[n][1] for n in ("payment", "listing", "k3"))
    for sub in scenario.sublessors:
        if sub.balance_fen is not None:
            payment.set_account(sub.sublessor_id, sub.balance_fen, frozen=sub.frozen)
        listing.set_listings(sub.sublessor_id, sub.listings)
    # A flaky day at the payment center: an answer lost after the money moved,
    # a 500 before it moved, and a garbage body.
    payment.add_fault(Fault("error_after", path="/trade/charge", nth=[5]))
    payment.add_fault(Fault("error_before", path="/trade/charge", nth=[11]))
    payment.add_fault(Fault("garbage_after", path="/trade/charge", nth=[17]))
    services = {}
    for spec, sandbox in sandboxes.values():
        sandbox.start(0)
        services[spec.conn_id] = airflow_conn(spec, sandbox.port)
        say(f"sandbox {spec.name:<8} {sandbox.url}")
    variables = {"call400_sensor_timeout": 15, "payment_api_timeout": 3000}
    env = envmod.airflow_env(names, server, services, variables)
    migrate_metadata(env)
    runs: list[RunResult] = []

    def run(dag_id: str, **kwargs) -> RunResult:
        result = run_dag(dag_id, env, **kwargs)
        runs.append(result)
        say(result.line())
        return result

    try:
        run("broker_phone_sync", conf={"full_resync": True}, label="full")
        envmod.reset_queue_and_publish(names, scenario.messages)
        say(f"published {len(scenario.messages)} messages to {names.exchange} -> {names.queue}")
        for attempt in range(1, MAX_BILLING_RUNS + 1):
            result = run("call400_billing", label=str(attempt))
            if result.state == "success" and envmod.queue_depth(names) == 0:
                break
        run("accounting_income")
        run("k3_contract_export", label="1")
        run("k3_contract_export", label="2")  # nothing new: no second bill anywhere
    finally:
        extra = {
            "published": len(scenario.messages),
            "double_charges": len(payment.state()["double_charged"]),
            "k3_bills": k3.bill_count(),
            "k3_contracts": len(scenario.contracts),
            "runs": [r.line() for r in runs],
        }
        for _, sandbox in sandboxes.values():
            sandbox.stop()
    print(render(user_prop, extra))
    say(
        f"logs of every run: {envmod.DEMO_DIR / 'logs'}; finished in {time.monotonic() - started:.0f}s"
    )
    failed = [r for r in runs if r.state != "success" and r.dag_id != "call400_billing"]
    return 1 if failed or runs[-1].state != "success" else 0


if __name__ == "__main__":
    sys.exit(main())
