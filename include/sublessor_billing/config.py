"""Names and defaults of the tunables, as fixed by the runtime contract.

The values live in Airflow Variables (names kept from the legacy PHP config);
these are the defaults used when a Variable is not set. Domain code takes the
values as arguments; only tasks read Variables.
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
    name: str
    default: int | float
    meaning: str


FILTER_CALL_TIME_RULE_THRESHOLD = Tunable(
    "filter_call_time_rule_threshold", 8, "seconds: a call this short or shorter is invalid"
)
FILTER_LAST_CALL_TIME_RULE_THRESHOLD = Tunable(
    "filter_last_call_time_rule_threshold", 86400, "seconds: window of the repeat rule"
)
PAYMENT_PRICE_PER_CALL = Tunable("payment_price_per_call", 40, "yuan per valid call")
PAYMENT_API_TIMEOUT = Tunable(
    "payment_api_timeout", 20000, "milliseconds per payment / listing request"
)
CALL400_MAX_MESSAGES_PER_RUN = Tunable(
    "call400_max_messages_per_run", 10000, "cap on the messages one run of call400_billing takes"
)

# Tunables of this project (not in the legacy configuration).
CALL400_SENSOR_TIMEOUT = Tunable(
    "call400_sensor_timeout",
    300,
    "seconds the call400 sensor waits for messages before the run is skipped",
)
BROKER_PHONE_SYNC_OVERLAP = Tunable(
    "broker_phone_sync_overlap_seconds",
    900,
    "seconds re-read before each broker_phone_sync interval",
)
BROKER_PHONE_FULL_RESYNC_HOURS = Tunable(
    "broker_phone_full_resync_hours",
    24,
    "hours after which a scheduled broker_phone_sync run does a full resync (0: never)",
)
BROKER_PHONE_MAX_REMOVAL_SHARE = Tunable(
    "broker_phone_max_removal_share",
    0.2,
    "share of broker_phone (0 to 1) above which a broker_phone_sync refuses to remove rows",
)

CALL400_CHARGE_SHARDS = Tunable(
    "call400_charge_shards",
    1,
    "sublessor shards a call400_billing run charges in parallel tasks, 1 to 16 (1: in its bill task)",
)
CALL400_CHARGE_SHARDS_MAX = 16

ACCOUNTING_INCOME_BATCH_SIZE = Tunable(
    "accounting_income_batch_size", 5000, "payments read per accounting transaction"
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


def parse_int_setting(
    tunable: Tunable, raw: object, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """Turn a Variable's text into an int, refusing values an operator did not mean."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return tunable.default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise SettingError(
            f"Variable {tunable.name!r} must be an integer ({tunable.meaning}); got {raw!r}. "
            f"Fix it in Admin -> Variables or delete it to use the default {tunable.default}."
        ) from None
    if value < minimum:
        raise SettingError(
            f"Variable {tunable.name!r} must be >= {minimum} ({tunable.meaning}); got {value}. "
            f"Fix it in Admin -> Variables or delete it to use the default {tunable.default}."
        )
    if maximum is not None and value > maximum:
        raise SettingError(
            f"Variable {tunable.name!r} must be <= {maximum} ({tunable.meaning}); got {value}. "
            f"Fix it in Admin -> Variables or delete it to use the default {tunable.default}."
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
    if not 0 <= value <= 1:  # NaN fails too
        raise SettingError(
            f"Variable {tunable.name!r} must be a number between 0 and 1 ({tunable.meaning}; "
            f"0.2 is 20 %); got {raw!r}. Fix it in Admin -> Variables or delete it to use "
            f"the default {tunable.default}."
        )
    return value
