"""The demo reads how a DAG run ended from the CLI's JSON output (a stand-in ``airflow`` here)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from sublessor_billing.demo.airflow_runs import last_run_states, parse_cli_json

RUNS = [
    {"dag_id": "d", "run_id": "manual__1", "state": "success", "run_after": "2026-03-01T09:00:00+00:00"},
    {"dag_id": "d", "run_id": "manual__2", "state": "failed", "run_after": "2026-03-01T10:00:00+00:00"},
]  # fmt: skip
TASKS = [
    {"dag_id": "d", "task_id": "export", "state": "failed"},
    {"dag_id": "d", "task_id": "check", "state": None},
]


def fake_airflow(tmp_path, runs: list, *, exit_code: int = 0):
    """An ``airflow`` that warns on stdout first, as the real one does, then prints JSON."""
    script = tmp_path / "airflow"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import json, sys
            args = sys.argv[1:]
            assert args[-2:] == ["-o", "json"], args
            print("[warning  ] Could not import graphviz.")
            print("Run `pip install graphviz` to attempt to install it. [py.warnings]")
            if {exit_code}:
                print("DAG: d does not exist in 'dag' table", file=sys.stderr)
                sys.exit({exit_code})
            if args[:2] == ["dags", "list-runs"]:
                print(json.dumps({runs!r}))
            elif args[:2] == ["tasks", "states-for-dag-run"] and args[3] == "manual__2":
                print(json.dumps({TASKS!r}, indent=2))
            else:
                sys.exit(f"unexpected {{args}}")
            """
        )
    )
    script.chmod(0o755)
    return script


def test_the_newest_run_and_its_task_states(tmp_path) -> None:
    state, tasks = last_run_states({}, "d", airflow=fake_airflow(tmp_path, RUNS))
    assert state == "failed" and tasks == {"export": "failed", "check": "none"}


def test_no_run_yet(tmp_path) -> None:
    assert last_run_states({}, "d", airflow=fake_airflow(tmp_path, [])) == ("no run", {})


def test_a_failing_command_says_which_and_why(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="airflow dags list-runs d -o json failed.*'dag' table"):
        last_run_states({}, "d", airflow=fake_airflow(tmp_path, RUNS, exit_code=1))


def test_json_after_warnings_even_one_that_starts_with_a_bracket() -> None:
    out = "[warning  ] graphviz\n" + json.dumps(RUNS, indent=2) + "\n"
    assert parse_cli_json(out) == RUNS
    with pytest.raises(RuntimeError, match="printed no JSON"):
        parse_cli_json("[warning  ] nothing else\n")
