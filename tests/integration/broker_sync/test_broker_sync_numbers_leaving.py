"""The removal guard counts numbers that leave the blacklist, not deleted rows (real MariaDB)."""

from __future__ import annotations

import broker_sync_db
import pytest
from broker_sync_db import brokers, put_brokers, source_phones, table_and_cursors, target_phones

from sublessor_billing.broker_sync import MassRemoval, full_resync, sync_interval

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("page_size", [2, 1000])
def test_changed_mobiles_count_as_numbers_leaving(source, target, ten_brokers, page_size) -> None:
    """Three brokers change mobile: their three old numbers leave as surely as deleted rows."""
    before = table_and_cursors(target)
    put_brokers(source, brokers([1, 2, 3], "2026-03-01 09:00:00", mobile="1390000{:04d}"))
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target, page_size=page_size)
    assert (failure.value.would_remove, failure.value.total) == (3, 10)
    assert "3 numbers" in str(failure.value) and "3 changed" in str(failure.value)
    assert table_and_cursors(target) == before


def test_an_interval_of_changed_mobiles_is_held_to_the_limit(source, target, ten_brokers) -> None:
    before = table_and_cursors(target)
    put_brokers(source, brokers([1, 2, 3], "2026-03-01 10:01:00", mobile="1390000{:04d}"))
    with pytest.raises(MassRemoval) as failure:
        sync_interval(source, target, **broker_sync_db.INTERVAL, page_size=2)
    assert (failure.value.would_remove, failure.value.total) == (3, 10)
    assert table_and_cursors(target) == before


def test_a_number_shared_by_brokers_leaves_only_with_the_last_of_them(source, target) -> None:
    """Four brokers share one number: three leaving removes no number at all."""
    shared = "13800000001"
    put_brokers(source, [(i, shared, "2025-06-01 08:00:00") for i in (1, 2, 3, 4)])
    put_brokers(source, brokers([5, 6]))
    full_resync(source, target)
    assert len(target_phones(target)) == 6  # six rows, three numbers

    put_brokers(source, brokers([1, 2, 3], "2026-03-01 09:00:00", mobile=""))
    report = full_resync(source, target, page_size=2)
    assert (report.removed, report.numbers_removed) == (3, 0)
    assert target_phones(target) == source_phones(source)

    # The last broker with it leaves: now the number leaves, 1 of 3 numbers (33 %).
    put_brokers(source, brokers([4], "2026-03-01 09:30:00", mobile=""))
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target)
    assert (failure.value.would_remove, failure.value.total) == (1, 3)


def test_numbers_that_move_between_brokers_do_not_leave(source, target, ten_brokers) -> None:
    """Swapped mobiles and a number handed to a new broker stay in the blacklist."""
    put_brokers(
        source,
        [
            (1, "13800000002", "2026-03-01 10:01:00"),
            (2, "13800000001", "2026-03-01 10:01:00"),
            (3, "", "2026-03-01 10:01:00"),
            (11, "13800000003", "2026-03-01 10:02:00"),  # broker 3's number, on a later page
        ],
    )
    report = sync_interval(
        source, target, **broker_sync_db.INTERVAL, page_size=1, max_removal_share=0
    )
    assert (report.changed, report.removed, report.added, report.numbers_removed) == (2, 1, 1, 0)
    assert target_phones(target) == source_phones(source)
