"""DAG integrity, Astronomer style: exactly the expected DAGs import, each with tags, docs, retries."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.airflow import REPO
from support.constants import DAG_IDS

DAGS_DIR = REPO / "dags"


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dag_bag) -> None:
    assert dag_bag.import_errors == {}


def test_the_dag_ids_are_exactly_the_expected_ones(dag_bag) -> None:
    assert set(dag_bag.dag_ids) == DAG_IDS


def test_one_dag_per_file_named_after_it(dag_bag) -> None:
    files = {Path(dag.fileloc).stem: dag_id for dag_id, dag in dag_bag.dags.items()}
    assert files == {dag_id: dag_id for dag_id in DAG_IDS}


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_has_tags_docs_one_active_run_and_retries(dag_bag, dag_id: str) -> None:
    dag = dag_bag.dags.get(dag_id)
    assert dag is not None, f"{dag_id} did not load"
    assert "sublessor_billing" in dag.tags
    assert dag.doc_md and dag.doc_md.strip().startswith(f"### {dag_id}")
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.tasks, f"{dag_id} has no task"
    for task in dag.tasks:
        assert task.retries >= 2, f"{dag_id}.{task.task_id} has retries={task.retries}"
        assert task.execution_timeout is not None, f"{dag_id}.{task.task_id} may run forever"
