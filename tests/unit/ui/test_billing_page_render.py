"""The Billing page's HTML and chart, rendered from a summary without a server."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from sublessor_airflow.ui.chart import hourly_chart, nice_ceiling
from sublessor_airflow.ui.page import render_page

HOSTILE = "<img src=x onerror=alert(1)>"


def summary() -> dict:
    hours = [{"hour": h, "calls": 0, "valid": 0, "charged": 0, "revenue_fen": 0} for h in range(24)]
    hours[10].update(calls=37, valid=20, charged=18, revenue_fen=72000)
    outcome = {"count": 0, "amount_fen": 0}
    return {
        "day": "2026-03-01",
        "generated_at": datetime(2026, 3, 1, 18, 0),
        "calls": {"total": 37, "valid": 20, "held": 0, "by_filter_rule": {"0": 0, "1": 20, "2": 17, "3": 0, "4": 0, "5": 0}},
        "charges": {
            "orders": 20,
            "revenue_fen": 72000,
            "by_outcome": {"success": {"count": 18, "amount_fen": 72000}, "insufficient": dict(outcome),
                           "failed": dict(outcome), "pending": {"count": 2, "amount_fen": 8000}},
        },
        "hourly": hours,
        "pending": {"count": 2, "oldest_age_seconds": 3725, "oldest": []},
        "held_calls": {"count": 1, "calls": [{"id": 3, "call_id": HOSTILE, "sublessor_id": 1, "caller": "*******8000",
                                              "start_time": None, "held_at": None, "held_count": 1, "reason": HOSTILE}]},
        "held_back_orders": {"count": 1, "ids": [5]},
        "offline": {"sublessors": 0, "delivered": 0, "undelivered": 0, "undelivered_all_days": 0, "rows": []},
        "quarantine": {
            "open": 1,
            "by_reason": [{"reason": HOSTILE, "count": 1, "newest_id": 7}],
            "newest": [{"id": 7, "received_at": None, "seen_count": 1, "reason": HOSTILE, "body_start": HOSTILE}],
        },
        "broker_phone_sync": {"high_water": None, "full_resync_at": None, "last_run": None},
        "billing_runs": {"last": None, "last_success": None},
        "k3_export": {"refused": 0, "in_flight": 0, "errors": []},
        "alerts": [{"name": "pending_too_old", "since": None, "detail": HOSTILE}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 4), (1, 4), (5, 8), (9, 20), (21, 40), (81, 100), (101, 200), (4001, 8000)],
)
def test_the_chart_scale_splits_into_whole_quarters(value, top) -> None:
    assert nice_ceiling(value) == top


def test_the_chart_has_one_bar_per_hour_and_series() -> None:
    svg = hourly_chart(summary()["hourly"])
    bars = re.findall(r'data-hour="(\d+)" data-series="(\w+)" data-value="(\d+)"', svg)
    assert len(bars) == 48
    assert ("10", "calls", "37") in bars and ("10", "charged", "18") in bars


def test_text_from_messages_is_escaped() -> None:
    html = render_page(summary(), [], user="alice", can_act=True)
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_user_who_may_not_act_gets_no_action_buttons() -> None:
    viewer = render_page(summary(), [], user="vera", can_act=False)
    editor = render_page(summary(), [], user="ed", can_act=True)
    assert 'data-action="replay"' not in viewer and 'data-action="discard"' not in viewer
    assert 'data-action="replay"' in editor and 'data-action="replay-reason"' in editor
    assert 'data-can-act="0"' in viewer and "(read only)" in viewer


def test_figures_carry_their_values_for_checks() -> None:
    html = render_page(summary(), [], user="ed", can_act=True)
    assert 'data-metric="charges.revenue_fen" data-value="72000">720.00<' in html
    assert 'data-metric="pending.oldest_age_seconds" data-value="3725">1 h 2 min<' in html
