"""Names, defaults and valid ranges of the tunables (runtime contract and this project's own).

The values live in Airflow Variables (names kept from the legacy PHP config);
the defaults are used when a Variable is not set, and a value outside its range
is refused with an error naming the Variable, the value and the range (a task
then fails without retries: only a person can fix it). Domain code takes the
values as arguments; only tasks read Variables (``sublessor_airflow.variables``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Connection ids (contracts/runtime.md).
ANJUKE_DB = "anjuke_db"
USER_PROP_DB = "user_prop_db"
CALL400_AMQP = "call400_amqp"
PAYMENT_API = "payment_api"
LISTING_API = "listing_api"
K3_CLOUD = "k3_cloud"


class SettingError(ValueError):
    """A Variable or Param holds a value the project cannot use; the message says what to set.

    A retry cannot fix it: tasks fail without retries (AirflowFailException).
    """


@dataclass(frozen=True)
class Tunable:
    """A Variable: its name, default, meaning, and the range of values the project accepts."""

    name: str
    default: int | float
    meaning: str
    minimum: int | float = 0
    maximum: int | float = math.inf


# Ranges: a value outside was not meant. A filter threshold of 0 would switch its rule
# off (rule 3 would pass 1-second calls, rule 4 would charge every repeat); a cap, price
# or timeout of 0 would stop billing; the upper bounds are far above any sane setting.
FILTER_CALL_TIME_RULE_THRESHOLD = Tunable(
    "filter_call_time_rule_threshold",
    8,
    "seconds: a call this short or shorter is invalid",
    minimum=1,
    maximum=3600,
)
FILTER_LAST_CALL_TIME_RULE_THRESHOLD = Tunable(
    "filter_last_call_time_rule_threshold",
    86400,
    "seconds: window of the repeat rule",
    minimum=60,
    maximum=30 * 86400,
)
PAYMENT_PRICE_PER_CALL = Tunable(
    "payment_price_per_call", 40, "yuan per valid call", minimum=1, maximum=1000
)
PAYMENT_API_TIMEOUT = Tunable(
    "payment_api_timeout",
    20000,
    "milliseconds per payment / listing request",
    minimum=100,
    maximum=120_000,
)
CALL400_MAX_MESSAGES_PER_RUN = Tunable(
    "call400_max_messages_per_run",
    10000,
    "cap on the messages one run of call400_billing takes",
    minimum=1,
    maximum=1_000_000,
)

# Tunables of this project (not in the legacy configuration).
CALL400_SENSOR_TIMEOUT = Tunable(
    "call400_sensor_timeout",
    300,
    "seconds the call400 sensor waits for messages before the run is skipped",
    minimum=1,
    maximum=3600,
)
BROKER_PHONE_SYNC_OVERLAP = Tunable(
    "broker_phone_sync_overlap_seconds",
    900,
    "seconds re-read before each broker_phone_sync interval",
    minimum=600,  # late commits on the broker system (broker_sync.MIN_OVERLAP_SECONDS)
    maximum=86400,
)
BROKER_PHONE_FULL_RESYNC_HOURS = Tunable(
    "broker_phone_full_resync_hours",
    24,
    "hours after which a scheduled broker_phone_sync run does a full resync (0: never)",
    minimum=0,
    maximum=8760,
)
BROKER_PHONE_MAX_REMOVAL_SHARE = Tunable(
    "broker_phone_max_removal_share",
    0.2,
    "share of broker_phone (0 to 1) above which a broker_phone_sync refuses to remove rows",
    minimum=0,
    maximum=1,
)

CALL400_CHARGE_SHARDS_MAX = 16
CALL400_CHARGE_SHARDS = Tunable(
    "call400_charge_shards",
    1,
    "sublessor shards a call400_billing run charges in parallel tasks, 1 to 16 (1: in its bill task)",
    minimum=1,
    maximum=CALL400_CHARGE_SHARDS_MAX,
)

ACCOUNTING_INCOME_BATCH_SIZE = Tunable(
    "accounting_income_batch_size",
    5000,
    "payments read per accounting transaction",
    minimum=1,
    maximum=100_000,
)

ALL_TUNABLES = (
    FILTER_CALL_TIME_RULE_THRESHOLD,
    FILTER_LAST_CALL_TIME_RULE_THRESHOLD,
    PAYMENT_PRICE_PER_CALL,
    PAYMENT_API_TIMEOUT,
    CALL400_MAX_MESSAGES_PER_RUN,
    CALL400_SENSOR_TIMEOUT,
    CALL400_CHARGE_SHARDS,
    BROKER_PHONE_SYNC_OVERLAP,
    ACCOUNTING_INCOME_BATCH_SIZE,
    BROKER_PHONE_FULL_RESYNC_HOURS,
    BROKER_PHONE_MAX_REMOVAL_SHARE,
)


# Variables of the billing_alerts DAG. At most a day: a larger threshold would keep a
# stuck billing quiet for days.
BILLING_ALERT_PENDING_MINUTES = Tunable(
    "billing_alert_pending_minutes",
    30,
    "minutes an order may stay pending before an alert",
    minimum=1,
    maximum=1440,
)
BILLING_ALERT_NO_SUCCESS_MINUTES = Tunable(
    "billing_alert_no_success_minutes",
    15,
    "minutes without a successful call400_billing run before an alert",
    minimum=1,
    maximum=1440,
)
BILLING_ALERT_REPEAT_MINUTES = Tunable(
    "billing_alert_repeat_minutes",
    60,
    "minutes between two notices of an alert still firing",
    minimum=1,
    maximum=1440,
)
BILLING_ALERT_TUNABLES = (
    BILLING_ALERT_PENDING_MINUTES,
    BILLING_ALERT_NO_SUCCESS_MINUTES,
    BILLING_ALERT_REPEAT_MINUTES,
)


def _fix_it(tunable: Tunable) -> str:
    return f"Fix it in Admin -> Variables or delete it to use the default {tunable.default}."


def parse_int_setting(tunable: Tunable, raw: object, *, minimum: int | None = None) -> int:
    """Turn a Variable's text into an int within the tunable's range (the default when unset).

    ``minimum`` can only narrow the range, never widen it.
    """
    low = tunable.minimum if minimum is None else max(minimum, tunable.minimum)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return int(tunable.default)
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= tunable.maximum:
        span = f"from {low} to {tunable.maximum}" if tunable.maximum < math.inf else f">= {low}"
        raise SettingError(
            f"Variable {tunable.name!r} must be an integer {span} ({tunable.meaning}); "
            f"got {raw!r}. {_fix_it(tunable)}"
        )
    return value


def parse_share_setting(tunable: Tunable, raw: object) -> float:
    """Turn a Variable's text into a share between 0 and 1 (0.2 is 20 %)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return float(tunable.default)
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = math.nan
    if not tunable.minimum <= value <= tunable.maximum:  # NaN fails too
        raise SettingError(
            f"Variable {tunable.name!r} must be a number between {tunable.minimum} and "
            f"{tunable.maximum} ({tunable.meaning}; 0.2 is 20 %); got {raw!r}. {_fix_it(tunable)}"
        )
    return value
