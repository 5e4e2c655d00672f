"""The bill task: four steps in order, each whatever the others did; it fails at the end."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sublessor_airflow.operators import bill
from sublessor_airflow.operators.bill import BillingStepsFailed, Call400BillOperator
from sublessor_airflow.operators.intake import CallsHeld
from sublessor_billing.steps import run_steps


class TI:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


@pytest.fixture
def steps(monkeypatch):
    """Replace the four step functions; ``steps[name]`` is what that step does (a callable)."""
    called: list[str] = []
    behaviour = {
        "take_in": lambda: {"received": 2},
        "judge": lambda: {"judged": 2},
        "charge": lambda: {"success": 1},
        "take_offline": lambda: {"sent": 0},
    }

    def fake(name):
        def step(**kwargs):
            called.append(name)
            return behaviour[name]()

        return step

    for name in behaviour:
        monkeypatch.setattr(bill, name, fake(name))
    behaviour["called"] = called
    return behaviour


def raise_(exc):
    def step():
        raise exc

    return step


def test_every_step_runs_in_order_and_each_result_goes_to_xcom(steps) -> None:
    ti = TI()
    result = Call400BillOperator(task_id="bill").execute({"ti": ti})
    assert steps["called"] == ["take_in", "judge", "charge", "take_offline"]
    assert result["intake"]["received"] == 2 and result["charge"]["success"] == 1
    assert all(result[name]["ok"] for name in ("intake", "judge", "charge", "offline"))
    assert ti.pushed["judge"]["judged"] == 2 and "return_value" not in ti.pushed


def test_a_failed_step_does_not_stop_the_recovery_steps_and_the_task_fails_at_the_end(
    steps,
) -> None:
    steps["take_in"] = raise_(ConnectionError("Cannot connect to RabbitMQ"))
    ti = TI()
    with pytest.raises(BillingStepsFailed, match=r"\[intake\] ConnectionError") as failed:
        Call400BillOperator(task_id="bill").execute({"ti": ti})
    assert not isinstance(failed.value, AirflowFailException)  # Airflow retries it
    assert steps["called"] == ["take_in", "judge", "charge", "take_offline"]
    assert ti.pushed["return_value"]["intake"]["ok"] is False
    assert "RabbitMQ" in ti.pushed["intake"]["error"]
    assert ti.pushed["charge"] == {"success": 1, "ok": True, "seconds": pytest.approx(0, abs=1)}


def test_a_step_a_person_must_fix_fails_the_task_without_retries_with_its_counts(steps) -> None:
    held = {"held": 1, "judged": 4, "held_total": 1}
    steps["judge"] = raise_(CallsHeld(held))
    charged = ConnectionError("payment center down")
    charged.result = {"pending": 3}  # what a step attaches to its error reaches XCom
    steps["charge"] = raise_(charged)
    ti = TI()
    with pytest.raises(AirflowFailException, match="a person must act") as failed:
        Call400BillOperator(task_id="bill").execute({"ti": ti})
    message = str(failed.value)
    assert "2 step(s) failed" in message and "[judge]" in message and "[charge]" in message
    assert "quarantine held" in message  # what to do, from the step's own error
    assert ti.pushed["judge"]["held_total"] == 1 and ti.pushed["judge"]["ok"] is False
    assert ti.pushed["charge"]["pending"] == 3
    assert steps["called"][-1] == "take_offline"


def test_run_steps_lets_a_kill_of_the_task_through() -> None:
    class Killed(BaseException):
        pass

    ran = []
    with pytest.raises(Killed):
        run_steps([("a", raise_(Killed())), ("b", lambda: ran.append("b") or {})])
    assert ran == []
