"""Read the project's Variables, inside tasks only: the one way they are read.

Each tunable's range is in ``sublessor_billing.config``; a value outside it fails the
task with ``AirflowFailException`` (no retries: a retry would read the same value),
its message naming the Variable, the value given and the range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException

from sublessor_billing.config import (
    SettingError,
    Tunable,
    parse_int_setting,
    parse_share_setting,
)

T = TypeVar("T")


def get_int(tunable: Tunable, *, minimum: int | None = None) -> int:
    """The Variable's value within its range, or the default when it is not set.

    ``minimum`` can only narrow the tunable's own range.
    """
    return int_setting(tunable, get_text(tunable.name), minimum=minimum)


def get_share(tunable: Tunable) -> float:
    """The Variable's share (0 to 1), or the default when it is not set."""
    return _refusing(lambda: parse_share_setting(tunable, get_text(tunable.name)))


def int_setting(tunable: Tunable, raw: object, *, minimum: int | None = None) -> int:
    """A value given for ``tunable`` some other way (a templated argument), checked alike."""
    return _refusing(lambda: parse_int_setting(tunable, raw, minimum=minimum))


def get_text(name: str) -> str | None:
    """The Variable's raw text, or None when it is not set (for values with their own parser)."""
    return Variable.get(name, default=None)


def _refusing(read: Callable[[], T]) -> T:
    try:
        return read()
    except SettingError as exc:
        raise AirflowFailException(str(exc)) from exc
