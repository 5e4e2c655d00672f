"""IN-list placeholders and chunking, the one implementation every table module uses."""

import pytest

from sublessor_billing.db.sql import chunks, marks


def test_marks_has_one_placeholder_per_value():
    assert marks([7]) == "%s"
    assert marks([1, 2, 3]) == "%s, %s, %s"


def test_marks_refuses_an_empty_list_which_would_be_invalid_sql():
    with pytest.raises(ValueError, match="at least one value"):
        marks([])


@pytest.mark.parametrize("n", [0, 1, 4, 5, 6, 10, 11])
def test_chunks_cover_every_value_once_in_order_and_none_is_larger_than_size(n):
    values = list(range(n))
    parts = list(chunks(values, 5))
    assert [v for part in parts for v in part] == values
    assert all(1 <= len(part) <= 5 for part in parts)
    assert len(parts) == -(-n // 5)


def test_chunks_refuse_a_size_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        list(chunks([1], 0))
