"""The loop of the charging and offline passes lets Airflow's execution_timeout through.

Airflow's ``execution_timeout`` is a SIGALRM whose handler raises
``AirflowTaskTimeout`` in the main thread; on uvloop that exception could be
swallowed inside a loop callback and the pass kept running (or hung).
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from sublessor_billing.payments.api import event_loop


class TaskTimeout(Exception):
    pass


def _raise(signum, frame):
    raise TaskTimeout("execution_timeout")


def test_the_pass_runs_on_the_standard_asyncio_loop():
    with event_loop() as runner:
        assert isinstance(runner.get_loop(), asyncio.BaseEventLoop)
        assert type(runner.get_loop()).__module__.startswith("asyncio.")


def test_an_alarm_raising_in_its_handler_ends_the_pass():
    async def a_pass_that_would_run_long():
        await asyncio.sleep(5)  # bounded: on a swallowing loop the test fails, not hangs
        return "ran to the end"

    previous = signal.signal(signal.SIGALRM, _raise)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(TaskTimeout), event_loop() as runner:
            runner.run(a_pass_that_would_run_long())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
