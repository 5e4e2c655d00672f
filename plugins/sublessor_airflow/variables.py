"""Read the project's tunables from Airflow Variables, inside tasks only."""

from __future__ import annotations

from airflow.sdk import Variable

from sublessor_billing.config import Tunable, parse_int_setting, parse_share_setting


def get_int(tunable: Tunable, *, minimum: int = 0, maximum: int | None = None) -> int:
    """The Variable's value, or the contract's default when it is not set."""
    raw = Variable.get(tunable.name, default=None)
    return parse_int_setting(tunable, raw, minimum=minimum, maximum=maximum)


def get_share(tunable: Tunable) -> float:
    """The Variable's share (0 to 1), or the contract's default when it is not set."""
    return parse_share_setting(tunable, Variable.get(tunable.name, default=None))
