"""The bill task: four steps in order, each whatever the others did; it fails at the end.

With Variable call400_charge_shards n >= 2 it allocates and hands the charging to
n charge_shard tasks (its return value); the shard task charges and delivers one shard.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sublessor_airflow.operators import bill
from sublessor_airflow.operators.bill import (
    BillingStepsFailed,
    Call400BillOperator,
    Call400ChargeShardOperator,
)
from sublessor_airflow.operators.intake import CallsHeld
from sublessor_billing.payments.store import ALL, Shard
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
    shards: list[tuple[str, Shard, bool | None]] = []  # (step, shard, allocate) of charge, offline
    behaviour = {
        "take_in": lambda: {"received": 2},
        "judge": lambda: {"judged": 2},
        "allocate_orders": lambda: {"allocated": 2},
        "charge": lambda: {"success": 1},
        "take_offline": lambda: {"sent": 0},
    }

    def fake(name):
        def step(**kwargs):
            called.append(name)
            if "shard" in kwargs:
                shards.append((name, kwargs["shard"], kwargs.get("allocate")))
            return behaviour[name]()

        return step

    for name in behaviour:
        monkeypatch.setattr(bill, name, fake(name))
    behaviour["called"] = called
    behaviour["shards"] = shards
    return behaviour


def raise_(exc):
    def step():
        raise exc

    return step


def test_every_step_runs_in_order_and_each_result_goes_to_xcom(steps) -> None:
    ti = TI()
    shards = Call400BillOperator(task_id="bill").execute({"ti": ti})
    assert shards == [], "one shard (the default): no charge_shard task"
    assert steps["called"] == ["take_in", "judge", "charge", "take_offline"]
    assert steps["shards"] == [("charge", ALL, True), ("take_offline", ALL, None)]
    assert ti.pushed["intake"]["received"] == 2 and ti.pushed["charge"]["success"] == 1
    assert all(ti.pushed[name]["ok"] for name in ("intake", "judge", "charge", "offline"))
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
    assert ti.pushed["intake"]["ok"] is False and "return_value" not in ti.pushed
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


def test_with_shards_bill_allocates_and_returns_one_shard_per_task(
    steps, airflow_variables
) -> None:
    airflow_variables("call400_charge_shards", 3)
    ti = TI()
    shards = Call400BillOperator(task_id="bill").execute({"ti": ti})
    assert shards == [{"index": i, "count": 3} for i in range(3)]
    assert steps["called"] == ["take_in", "judge", "allocate_orders"]  # no charge, no offline
    assert ti.pushed["allocate"]["allocated"] == 2 and "charge" not in ti.pushed


def test_with_shards_a_failed_step_makes_bill_charge_every_shard_itself(
    steps, airflow_variables
) -> None:
    airflow_variables("call400_charge_shards", 2)
    steps["take_in"] = raise_(ConnectionError("Cannot connect to RabbitMQ"))
    ti = TI()
    with pytest.raises(BillingStepsFailed, match=r"\[intake\] ConnectionError"):
        Call400BillOperator(task_id="bill").execute({"ti": ti})
    # a failed bill expands no shard task: what was left pending is charged here
    assert steps["called"] == ["take_in", "judge", "allocate_orders", "charge", "take_offline"]
    assert steps["shards"] == [("charge", ALL, False), ("take_offline", ALL, None)]
    assert ti.pushed["charge"]["ok"] and ti.pushed["allocate"]["ok"]


@pytest.mark.parametrize("raw", ["0", "17", "two", "-1"])
def test_a_shard_count_outside_1_to_16_is_refused_after_a_pass_on_one_shard(
    steps, airflow_variables, raw
) -> None:
    airflow_variables("call400_charge_shards", raw)
    ti = TI()
    with pytest.raises(AirflowFailException, match="'call400_charge_shards' must be") as failed:
        Call400BillOperator(task_id="bill").execute({"ti": ti})
    assert "a person must act" in str(failed.value) and "[shards]" in str(failed.value)
    assert steps["called"] == ["take_in", "judge", "charge", "take_offline"]
    assert steps["shards"][0] == ("charge", ALL, True)
    assert ti.pushed["shards"]["ok"] is False


@pytest.mark.parametrize("raw", ["1", "16", " 2 "])
def test_a_shard_count_from_1_to_16_is_taken(steps, airflow_variables, raw) -> None:
    airflow_variables("call400_charge_shards", raw)
    shards = Call400BillOperator(task_id="bill").execute({"ti": TI()})
    assert len(shards) == (0 if raw == "1" else int(raw))


def test_a_shard_task_charges_and_delivers_its_shard_only(steps) -> None:
    ti = TI()
    task = Call400ChargeShardOperator(task_id="charge_shard", shard={"index": 1, "count": 2})
    assert task.execute({"ti": ti}) is None
    assert steps["called"] == ["charge", "take_offline"]
    assert steps["shards"] == [("charge", Shard(1, 2), False), ("take_offline", Shard(1, 2), None)]
    assert ti.pushed["charge"]["success"] == 1 and ti.pushed["offline"]["ok"]


def test_a_shard_task_fails_at_the_end_and_is_retried(steps) -> None:
    pending = ConnectionError("payment center down")
    pending.result = {"pending": 2}
    steps["charge"] = raise_(pending)
    ti = TI()
    task = Call400ChargeShardOperator(task_id="charge_shard", shard={"index": 0, "count": 2})
    with pytest.raises(BillingStepsFailed, match=r"\[charge\] ConnectionError"):
        task.execute({"ti": ti})
    assert steps["called"] == ["charge", "take_offline"]  # its decisions delivered anyway
    assert ti.pushed["charge"]["pending"] == 2


def test_run_steps_lets_a_kill_of_the_task_through() -> None:
    class Killed(BaseException):
        pass

    ran = []
    with pytest.raises(Killed):
        run_steps([("a", raise_(Killed())), ("b", lambda: ran.append("b") or {})])
    assert ran == []
