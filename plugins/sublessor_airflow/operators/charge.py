"""Airflow glue of the money path: charge valid calls, then take dry sublessors offline.

``charge`` and ``take_offline`` are the steps (call400_billing's ``bill`` task
calls them in order, or ``allocate_orders`` alone when its ``charge_shard``
tasks charge and deliver one shard each); the operators run one step each.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import closing
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from sublessor_airflow.assets import SUBLESSOR_PAYMENTS
from sublessor_airflow.hooks.signed_http import ListingApiHook, PaymentApiHook
from sublessor_airflow.operators.base import UserPropDbOperator
from sublessor_billing import config
from sublessor_billing.payments.charging import (
    ChargesPending,
    OrderIdsReused,
    UnallocatableCalls,
    allocate_new_orders,
    charge_valid_calls,
)
from sublessor_billing.payments.offline import OfflinePending, send_offline_decisions
from sublessor_billing.payments.orphans import OrphanedCalls
from sublessor_billing.payments.outcomes import OrderIdOutOfRange, PaymentConfigurationError
from sublessor_billing.payments.store import ALL, Shard

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


def _timeout_ms() -> int:
    from sublessor_airflow.variables import get_int

    return get_int(config.PAYMENT_API_TIMEOUT, minimum=1)


def pass_deadline_s(execution_timeout: timedelta | None) -> float | None:
    """The sending deadline of a charging pass: 90% of ``execution_timeout``, so the pass ends
    with ChargesPending and its answers recorded before Airflow kills the task (None: unbounded)."""
    return None if execution_timeout is None else execution_timeout.total_seconds() * 0.9


def charge(
    *,
    payment_conn_id: str = config.PAYMENT_API,
    user_prop_conn_id: str = config.USER_PROP_DB,
    workers: int = 64,
    deadline_s: float | None = None,
    shard: Shard = ALL,
    allocate: bool = True,
) -> dict[str, Any]:
    """Allocate orders for new valid calls and settle the pending orders of ``shard``; the counts.

    ``allocate=False``: settle only (the orders were allocated before, ``allocate_orders``).

    Errors a retry cannot fix (wrong key, reused or out-of-range order ids, valid
    calls that cannot be given an order, or flagged without their order) become
    ``AirflowFailException`` saying what to do; ``ChargesPending`` (still unknown
    after the in-pass retries) is left to Airflow's retries.
    """
    from sublessor_airflow.hooks.mysql import user_prop_db
    from sublessor_airflow.variables import get_int

    price_fen = get_int(config.PAYMENT_PRICE_PER_CALL, minimum=1) * 100
    hook = PaymentApiHook(payment_conn_id, timeout_ms=_timeout_ms(), pool_size=int(workers))
    client = hook.get_async_conn()  # the connection is read here, once
    try:
        with closing(user_prop_db(user_prop_conn_id)) as conn:
            report = charge_valid_calls(
                conn, client, price_fen=price_fen, workers=int(workers), deadline_s=deadline_s,
                shard=shard, allocate=allocate,
            )  # fmt: skip
    except PaymentConfigurationError as exc:
        # A retry cannot fix a wrong key: fail now, without burning the retries.
        raise AirflowFailException(
            f"{exc} Fix Admin -> Connections -> {payment_conn_id}, then clear this task."
        ) from exc
    except (OrderIdsReused, OrderIdOutOfRange) as exc:
        raise AirflowFailException(f"{exc} Then clear this task.") from exc
    except (UnallocatableCalls, OrphanedCalls) as exc:  # a person must decide: no retries
        raise AirflowFailException(str(exc)) from exc
    except ChargesPending as exc:
        exc.result = exc.report.as_dict()  # the counts, for XCom, though the step failed
        raise
    result = report.as_dict()
    log.info(
        "Charged %s call(s), %s fen (%s yuan); insufficient %s, failed %s; %s offline decision(s)",
        result["success"], result["charged_fen"], result["charged_yuan"],
        result["insufficient"], result["failed"], result["offline_decisions"],
    )  # fmt: skip
    return result


# What the allocation reports besides its own counts (ChargeReport.as_dict keys).
ALLOCATION_KEYS = ("history_flagged", "flagged_by_check", "orphans_found", "orphan_call_ids")


def allocate_orders(
    *, user_prop_conn_id: str = config.USER_PROP_DB, deadline_s: float | None = None
) -> dict[str, Any]:
    """Give every valid call without an order a pending one (no request sent); the counts.

    Valid calls that cannot be given an order (``UnallocatableCalls``) or flagged
    without their order (``OrphanedCalls``) fail the step without retries, counts
    attached, as they fail ``charge``.
    """
    from sublessor_airflow.hooks.mysql import user_prop_db
    from sublessor_airflow.variables import get_int

    price_fen = get_int(config.PAYMENT_PRICE_PER_CALL, minimum=1) * 100
    with closing(user_prop_db(user_prop_conn_id)) as conn:
        report = allocate_new_orders(conn, price_fen, deadline_s)
    counts = report.as_dict()
    result = {k: counts[k] for k in (*report.allocation.as_dict(), *ALLOCATION_KEYS)}
    problems = []
    if report.allocation.unallocatable:
        problems.append(str(UnallocatableCalls(report.allocation)))
    if report.orphan_check is not None and report.orphan_check.found:
        problems.append(str(OrphanedCalls(report.orphan_check)))
    if problems:  # a person must decide: no retries
        failed = AirflowFailException(" ".join(problems))
        failed.result = result
        raise failed
    return result


def take_offline(
    *,
    listing_conn_id: str = config.LISTING_API,
    user_prop_conn_id: str = config.USER_PROP_DB,
    workers: int = 8,
    shard: Shard = ALL,
) -> dict[str, Any]:
    """Send every pending offline decision of ``shard``; ``OfflinePending`` while any is undelivered."""
    from sublessor_airflow.hooks.mysql import user_prop_db

    # No price: whether a decision is current was settled when its charge was recorded.
    hook = ListingApiHook(listing_conn_id, timeout_ms=_timeout_ms(), pool_size=int(workers))
    client = hook.get_async_conn()  # the connection is read here, once
    try:
        with closing(user_prop_db(user_prop_conn_id)) as conn:
            report = send_offline_decisions(conn, client, workers=int(workers), shard=shard)
    except OfflinePending as exc:
        if getattr(client, "refused_signature", False):  # a retry cannot fix a wrong key
            raise AirflowFailException(
                "The listing service refused our signature (code 1003): the app id (login) or "
                f"app key (password) is wrong. {exc} Fix Admin -> Connections -> "
                f"{listing_conn_id}, then clear this task."
            ) from exc
        raise
    return report.as_dict()


class ChargeValidCallsOperator(UserPropDbOperator):
    """Allocate an order for every valid call and settle every pending order (docs/payments.md).

    Settles whatever is pending, whether or not upstream found new calls. An
    unknown outcome is retried inside the task (same order id); the task fails
    only when a person must act: still unknown after those retries
    (``ChargesPending``, Airflow retries it), a wrong key (1003), a reused order
    id (1004), ids below the range (held back, never sent, while every other
    order is settled), valid calls that cannot be given an order (named at the
    end of a pass that charged every other call; repair or write them off), or
    valid calls flagged without their order (``OrphanedCalls``, likewise; nothing
    is reset); these five fail without retries. Returns counts per outcome and the
    money charged.

    :param payment_conn_id: the payment center's connection (templated).
    :param workers: charge requests in flight at once (templated).
    """

    template_fields: Sequence[str] = (
        "payment_conn_id",
        *UserPropDbOperator.template_fields,
        "workers",
    )

    def __init__(
        self, *, payment_conn_id: str = config.PAYMENT_API, workers: int = 64, **kwargs: Any
    ) -> None:
        kwargs.setdefault("outlets", [SUBLESSOR_PAYMENTS])
        super().__init__(**kwargs)
        self.payment_conn_id = payment_conn_id
        self.workers = workers

    def execute(self, context: Context) -> dict[str, Any]:
        return charge(
            payment_conn_id=self.payment_conn_id,
            user_prop_conn_id=self.user_prop_conn_id,
            workers=int(self.workers),
            deadline_s=pass_deadline_s(self.execution_timeout),
        )


class TakeListingsOfflineOperator(UserPropDbOperator):
    """Send every pending offline decision to the listing service; fail while any is undelivered.

    :param listing_conn_id: the listing service's connection (templated).
    :param workers: decisions sent at once.
    """

    template_fields: Sequence[str] = ("listing_conn_id", *UserPropDbOperator.template_fields)

    def __init__(
        self, *, listing_conn_id: str = config.LISTING_API, workers: int = 8, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.listing_conn_id = listing_conn_id
        self.workers = workers

    def execute(self, context: Context) -> dict[str, Any]:
        return take_offline(
            listing_conn_id=self.listing_conn_id,
            user_prop_conn_id=self.user_prop_conn_id,
            workers=int(self.workers),
        )
