"""Benchmark the K3 contract export against the sandbox K3 Cloud on loopback.

Run: .venv/bin/python bench/bench_k3_export.py [--contracts 5000] [--latency-ms 20] [--latency-contracts 500]

Creates a uniquely named database on the local MariaDB, fills sublessor_contract
from MariaDB's sequence engine, and times: the first export (every contract
created), an idle run (nothing changed), a run after 10% of contracts were
edited, and a first export against a K3 that answers after ``--latency-ms``.
Each contract costs two commits and one Save, so the rate is bound by K3's
latency in production. Drops the database at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-k3-airflow-"))

from sublessor_billing.db.connect import MySqlTarget, connect  # noqa: E402
from sublessor_billing.db.migrate import apply_external_ddl, apply_migrations  # noqa: E402
from sublessor_billing.k3.export import export_contracts  # noqa: E402
from sublessor_billing.k3.mapping import parse_field_map  # noqa: E402
from sublessor_billing.sandbox.k3_cloud import K3CloudSandbox  # noqa: E402

SERVER = MySqlTarget(
    host=os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    port=int(os.environ.get("TEST_MYSQL_PORT", "3306")),
    user=os.environ.get("TEST_MYSQL_USER", "root"),
    password=os.environ.get("TEST_MYSQL_PASSWORD", ""),
)


def fresh_database(contracts: int) -> MySqlTarget:
    name = f"bench_k3_{secrets.token_hex(4)}"
    admin = connect(SERVER)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    admin.close()
    target = SERVER.with_database(name)
    conn = connect(target)
    apply_migrations(conn)
    apply_external_ddl(conn, "user_prop_db")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sublessor_contract (sublessor_id, contract_no, total_amount, balance,"
            " start_date, end_date, status, signed_at, updated_datetime)"
            " SELECT 1000 + MOD(seq, 97), CONCAT('HT-B-', LPAD(seq, 7, '0')), seq * 100, seq * 100,"
            " '2026-01-01', '2026-12-31', 1, '2025-12-20 10:00:00', '2026-01-01 08:00:00'"
            f" FROM seq_1_to_{contracts}"
        )
    conn.commit()
    conn.close()
    return target


def drop(target: MySqlTarget) -> None:
    admin = connect(SERVER)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{target.database}`")
    admin.close()


def timed_export(target: MySqlTarget, k3: K3CloudSandbox) -> tuple[dict[str, int], float]:
    from sublessor_airflow.hooks.k3_cloud import K3CloudHook

    os.environ["AIRFLOW_CONN_K3_CLOUD"] = json.dumps(
        {
            "conn_type": "http",
            "host": k3.k3_url,
            "login": "api_user",
            "password": "api-secret",
            "extra": {"acct_id": "瑞庭（上海）1117 aaa", "form_id": "SUBL_Contract"},
        }
    )
    conn, hook = connect(target), K3CloudHook()
    began = time.perf_counter()
    report = export_contracts(conn, hook, parse_field_map(None))
    elapsed = time.perf_counter() - began
    conn.close()
    hook.close()
    return report.counts(), elapsed


def scenario(contracts: int, latency_ms: float, *, edits: bool) -> None:
    target = fresh_database(contracts)
    k3 = K3CloudSandbox().start()
    k3.configure(latency_ms=latency_ms)
    try:
        counts, s = timed_export(target, k3)
        print(
            f"first export, K3 latency {latency_ms:g} ms: {counts} in {s:.2f}s = {contracts / s:.0f} contracts/s"
        )
        if not edits:
            return
        counts, s = timed_export(target, k3)
        print(f"idle run: {counts} in {s:.2f}s")
        conn = connect(target)
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE sublessor_contract SET total_amount = total_amount + 1,"
                " updated_datetime = updated_datetime + INTERVAL 1 DAY WHERE MOD(id, 10) = 0"
            )
        conn.commit()
        conn.close()
        counts, s = timed_export(target, k3)
        print(f"after editing 10%: {counts} in {s:.2f}s = {counts['updated'] / s:.0f} updates/s")
        assert k3.bill_count() == contracts, "a contract was created twice"
    finally:
        k3.stop()
        drop(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contracts", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--latency-contracts", type=int, default=500)
    args = parser.parse_args()
    scenario(args.contracts, 0.0, edits=True)
    scenario(args.latency_contracts, args.latency_ms, edits=False)


if __name__ == "__main__":
    main()
