"""Page look-ups: a row K3 answers that we cannot attribute is never dropped (nor created again)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from sublessor_billing.k3.api import QueryRejected
from sublessor_billing.k3.lookup import look_up_bills
from sublessor_billing.sandbox.k3_filter import k3_collation_key


class WidthInsensitiveK3:
    """Answers like a K3 whose collation also ignores width; records the queries."""

    def __init__(self, bills: dict[int, str], rejects: Iterable[str] = ()) -> None:
        self.bills = bills
        self.rejects = set(rejects)  # a filter naming one of these answers an error
        self.queries: list[list[str]] = []

    def find_bills(self, bill_numbers: Iterable[str]) -> list[tuple[int, str]]:
        numbers = list(bill_numbers)
        self.queries.append(numbers)
        if self.rejects & set(numbers) or "*" in self.rejects:
            raise QueryRejected("FilterString: 过滤条件错误")
        keys = {k3_collation_key(n, width_insensitive=True) for n in numbers}
        return [
            (fid, number)
            for fid, number in sorted(self.bills.items())
            if k3_collation_key(number, width_insensitive=True) in keys
        ]


NUMBERS = [f"HT-{i}" for i in range(8)]


def test_one_query_when_every_row_is_attributed() -> None:
    k3 = WidthInsensitiveK3({10: "HT-1", 11: "ht-1 ", 12: "HT-5"})
    assert look_up_bills(k3, NUMBERS).found == {"ht-1": [10, 11], "ht-5": [12]}
    assert k3.queries == [NUMBERS]


def test_a_row_under_another_spelling_is_attributed_by_asking_again_in_halves() -> None:
    k3 = WidthInsensitiveK3({10: "ＨＴ-5", 11: "HT-1"})  # full-width, as K3 stores it
    assert look_up_bills(k3, NUMBERS).found == {"ht-5": [10], "ht-1": [11]}
    assert ["HT-5"] in k3.queries  # settled by a query for that number alone
    assert len(k3.queries) <= 1 + 2 * 3  # halves, not one query per number


def test_duplicate_numbers_are_asked_once_and_nothing_asked_for_none() -> None:
    k3 = WidthInsensitiveK3({})
    assert look_up_bills(k3, ["HT-1", "ht-1 ", "HT-1"]).found == {}
    assert k3.queries == [["HT-1"]]
    assert look_up_bills(k3, []).found == {} and len(k3.queries) == 1


def test_sandbox_collation_folds_width_only_when_asked() -> None:
    assert k3_collation_key("ＨＴ-1　") != k3_collation_key("HT-1")
    assert k3_collation_key("ＨＴ-1　", width_insensitive=True) == k3_collation_key("ht-1 ")
    assert k3_collation_key(" HT-1") != k3_collation_key("HT-1")  # leading spaces count


def test_a_number_k3_rejects_is_isolated_and_the_others_are_looked_up() -> None:
    k3 = WidthInsensitiveK3({10: "HT-2", 11: "HT-6"}, rejects={"HT-5"})
    lookup = look_up_bills(k3, NUMBERS)
    assert lookup.found == {"ht-2": [10], "ht-6": [11]}
    assert list(lookup.rejected) == ["ht-5"] and "过滤条件错误" in lookup.rejected["ht-5"]
    assert lookup.is_rejected("ht-5 ") and not lookup.is_rejected("HT-4")
    assert k3.queries[1] == [""]  # K3 answers a query for no number: the fault is one number's
    assert len(k3.queries) <= 2 + 2 * 3


def test_a_k3_rejecting_every_query_stops_the_run() -> None:
    k3 = WidthInsensitiveK3({10: "HT-2"}, rejects={"*"})
    with pytest.raises(QueryRejected, match="过滤条件错误"):
        look_up_bills(k3, NUMBERS)
    assert k3.queries == [NUMBERS, [""]]
