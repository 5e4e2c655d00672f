"""call400_billing's shape: charge_shard is mapped over bill's return value and is a leaf.

A leaf of its own so that a failed shard fails the run, and so that at the
default (one shard, an empty expansion: skipped, no process) ``done`` does not
wait a scheduler loop for the skip to be seen (docs/executors.md, "Charging
spread over workers").
"""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR / "call400_billing.py"))
    assert not bag.import_errors
    return bag.dags["call400_billing"]


def test_charge_shard_is_mapped_over_bill_and_is_a_leaf(dag) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    shard = dag.get_task("charge_shard")
    assert isinstance(shard, MappedOperator)
    assert shard.upstream_task_ids == {"bill"} and not shard.downstream_task_ids
    assert {t.task_id for t in dag.leaves} == {"charge_shard", "done"}


def test_done_waits_for_the_wait_and_bill_only(dag) -> None:
    done = dag.get_task("done")
    assert done.upstream_task_ids == {"wait_for_work", "bill"}
    assert done.trigger_rule == "none_failed"
    assert dag.get_task("bill").trigger_rule == "all_done"
