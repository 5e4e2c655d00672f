"""What check_income hands to XCom: its keys, their order, and money in fen."""

from __future__ import annotations

from sublessor_billing.accounting.check import IncomeCheck


def test_as_dict_names_every_count_in_order_and_leaves_the_problems_to_the_error() -> None:
    check = IncomeCheck(
        cursor=90,
        full=False,
        checked_from=40,
        income_mark=17,
        unallocated_rows=3,
        unallocated_payments=2,
        unallocated_amount=6000,
        unallocated_sublessors=1,
        unsettled_watched=4,
        problems=["payment 41 (success, 4000 fen) has 0 income rows totalling 0 fen"],
    )

    assert list(check.as_dict().items()) == [
        ("cursor", 90),
        ("full_check", False),
        ("checked_from", 40),
        ("income_mark", 17),
        ("unallocated_rows", 3),
        ("unallocated_payments", 2),
        ("unallocated_amount_fen", 6000),
        ("unallocated_sublessors", 1),
        ("unsettled_watched", 4),
    ]
