"""The contract -> K3 Model mapping and its validation."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sublessor_billing.k3.mapping import (
    DEFAULT_FIELD_MAP,
    contract_to_model,
    model_digest,
    parse_field_map,
)

CONTRACT = {
    "id": 5,
    "sublessor_id": 9001,
    "contract_no": "HT-2026-0001",
    "total_amount": 1_234_567,
    "balance": 3,
    "start_date": dt.date(2026, 3, 1),
    "end_date": dt.date(2027, 2, 28),
    "status": 1,
    "signed_at": dt.datetime(2026, 2, 27, 8, 0, 9),
}


def test_default_mapping_builds_the_documented_model() -> None:
    model = contract_to_model(CONTRACT, parse_field_map(None))
    assert model == {
        "FBillNo": "HT-2026-0001",
        "FCustomerID": {"FNumber": "9001"},
        "FContractAmount": 12345.67,
        "FStartDate": "2026-03-01",
        "FEndDate": "2027-02-28",
        "FDate": "2026-02-27 08:00:09",
        "FCancelStatus": "A",
    }
    assert (
        contract_to_model({**CONTRACT, "status": 0}, parse_field_map(None))["FCancelStatus"] == "B"
    )


def test_fid_is_added_only_for_an_update() -> None:
    field_map = parse_field_map(None)
    assert "FID" not in contract_to_model(CONTRACT, field_map)
    assert contract_to_model(CONTRACT, field_map, fid=100234)["FID"] == 100234


@given(st.integers(min_value=0, max_value=10**15))
def test_yuan_is_exact_for_every_fen_amount(fen: int) -> None:
    model = contract_to_model({**CONTRACT, "total_amount": fen}, parse_field_map(None))
    assert f"{model['FContractAmount']:.2f}" == f"{fen // 100}.{fen % 100:02d}"


def test_mapping_from_json_text_and_default_transform() -> None:
    parsed = parse_field_map(json.dumps({"FBillNo": "contract_no", "FNote": "sublessor_id"}))
    assert parsed == {"FBillNo": ("contract_no", "text"), "FNote": ("sublessor_id", "text")}
    assert contract_to_model(CONTRACT, parsed)["FNote"] == "9001"
    assert parse_field_map("  ") == parse_field_map(DEFAULT_FIELD_MAP)


@pytest.mark.parametrize(
    ("field_map", "message"),
    [
        ({"FBillNo": "contract_no", "FLeft": "balance|yuan"}, "unknown column 'balance'"),
        ({"FBillNo": "contract_no", "FID": "id|int"}, "must not map FID"),
        ({"FNote": "contract_no"}, "must map FBillNo"),
        ({"FBillNo": "sublessor_id"}, "must map FBillNo"),
        ({"FBillNo": "contract_no", "FAmt": "total_amount|euro"}, "unknown transform 'euro'"),
        ("{not json", "not valid JSON"),
        ("[]", "non-empty JSON object"),
    ],
)
def test_bad_mappings_are_refused_with_the_reason(field_map, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_field_map(field_map)


def test_a_value_the_transform_cannot_take_names_the_contract() -> None:
    field_map = parse_field_map({"FBillNo": "contract_no", "FAmt": "total_amount|yuan"})
    with pytest.raises(ValueError, match="HT-2026-0001.*total_amount"):
        contract_to_model({**CONTRACT, "total_amount": None}, field_map)


def test_digest_ignores_fid_and_balance_but_sees_every_mapped_field() -> None:
    field_map = parse_field_map(None)
    base = model_digest(contract_to_model(CONTRACT, field_map))
    assert model_digest(contract_to_model(CONTRACT, field_map, fid=7)) == base
    assert model_digest(contract_to_model({**CONTRACT, "balance": 0}, field_map)) == base
    for column, value in [
        ("total_amount", 1),
        ("end_date", dt.date(2030, 1, 1)),
        ("status", 0),
        ("sublessor_id", 1),
    ]:
        assert model_digest(contract_to_model({**CONTRACT, column: value}, field_map)) != base
