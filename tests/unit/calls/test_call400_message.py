"""The message contract, case by case and as properties over arbitrary input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from support.calls import GOOD_CALL

from sublessor_billing.calls import message as message_module
from sublessor_billing.calls.message import (
    INT_UNSIGNED_MAX,
    MAX_STRING,
    Call,
    Invalid,
    intake_clock,
    parse_message,
)
from sublessor_billing.phone import normalize_phone

GOOD = dict(GOOD_CALL, call_id="c-20260301-000017")


# The intake time validation compares start_time with (fixed: no test depends on the clock).
RECEIVED = datetime(2026, 3, 2, 9, 0, 0)


def parse(raw: bytes) -> Call | Invalid:
    return parse_message(raw, received_at=RECEIVED)


def body(**changes) -> bytes:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_contract_example_is_valid_and_normalized() -> None:
    call = parse(body())
    assert isinstance(call, Call)
    assert call.caller_normalized == "13800138000"
    assert call.start_time == datetime(2026, 3, 1, 10, 15, 2)
    assert (call.sublessor_id, call.prop_id, call.duration, call.call_type) == (
        10086,
        552301,
        95,
        "normal",
    )


def test_optional_fields_absent_or_null_take_defaults_and_extras_are_ignored() -> None:
    for value in (..., None):
        call = parse(body(prop_id=value, ext=value, call_type=value, extra={"x": [1]}))
        assert isinstance(call, Call)
        assert (call.prop_id, call.ext, call.call_type) == (0, "", "normal")


@pytest.mark.parametrize(
    ("changes", "reason_part"),
    [
        ({"call_id": ...}, "call_id is missing"),
        ({"call_id": None}, "call_id is missing"),
        ({"call_id": ""}, "call_id is empty"),
        ({"call_id": "x" * (MAX_STRING + 1)}, "call_id is 65 characters"),
        ({"caller": "1" * (MAX_STRING + 1)}, "caller is 65"),
        ({"caller": "\u2473" * 33}, "caller normalizes to 66 digits"),
        ({"ext": "9" * (MAX_STRING + 1)}, "ext is 65"),
        ({"called": 4008123456}, "called must be a string"),
        ({"sublessor_id": 0}, "sublessor_id = 0 is outside"),
        ({"sublessor_id": INT_UNSIGNED_MAX + 1}, "sublessor_id"),
        ({"sublessor_id": "10086"}, "sublessor_id must be an integer"),
        ({"sublessor_id": True}, "a boolean"),
        ({"status": True}, "a boolean"),
        ({"status": 2**31}, "status"),
        ({"duration": -1}, "duration = -1"),
        ({"duration": 95.0}, "a number with a fraction"),
        ({"prop_id": -1}, "prop_id = -1"),
        ({"start_time": "2026-02-30 10:00:00"}, "not a real date"),
        ({"start_time": "2026-03-01T10:15:02"}, "not YYYY-MM-DD HH:MM:SS"),
        ({"start_time": "2026-03-01 10:15:02\n"}, "not YYYY-MM-DD HH:MM:SS"),
        ({"start_time": "2026-03-01 24:00:00"}, "not a real date"),
        ({"start_time": 1772331302}, "start_time must be a string"),
        ({"call_type": "Callback"}, "call_type 'Callback'"),
        ({"call_type": 1}, "call_type must be a string"),
    ],
)
def test_invalid_fields_give_a_reason(changes, reason_part) -> None:
    parsed = parse(body(**changes))
    assert isinstance(parsed, Invalid)
    assert reason_part in parsed.reason


def test_boundaries_of_the_columns_are_valid() -> None:
    call = parse(
        body(
            sublessor_id=INT_UNSIGNED_MAX,
            prop_id=0,
            status=-(2**31),
            duration=INT_UNSIGNED_MAX,
            call_id="x" * MAX_STRING,
            caller="",
            call_type="callback",
        )
    )
    assert isinstance(call, Call)
    assert call.caller_normalized == ""


@pytest.mark.parametrize(
    ("start_time", "reason_part"),
    [
        ("9999-12-31 12:00:00", "more than one day after the intake time 2026-03-02 09:00:00"),
        ("2026-03-03 09:00:01", "more than one day after the intake time"),
        ("1999-12-31 23:59:59", "before 2000-01-01"),
        ("1000-01-01 00:00:00", "before 2000-01-01"),
        ("0999-12-31 23:59:59", "before 2000-01-01"),
    ],
)
def test_start_time_outside_2000_to_one_day_after_intake_is_invalid(
    start_time, reason_part
) -> None:
    """One implausible start_time must never reach the judge (9999 overflowed its window)."""
    parsed = parse(body(start_time=start_time))
    assert isinstance(parsed, Invalid)
    assert reason_part in parsed.reason
    assert parsed.call_id == GOOD["call_id"]


@pytest.mark.parametrize("start_time", ["2000-01-01 00:00:00", "2026-03-03 09:00:00"])
def test_start_time_bounds_themselves_are_valid(start_time) -> None:
    parsed = parse(body(start_time=start_time))
    assert isinstance(parsed, Call)
    assert parsed.start_time == datetime.fromisoformat(start_time)


def test_the_intake_time_given_decides_not_the_clock() -> None:
    raw = body(start_time="2026-03-10 10:00:00")
    assert isinstance(parse_message(raw, received_at=RECEIVED), Invalid)
    later = datetime(2026, 3, 9, 10, 0, 0)
    assert isinstance(parse_message(raw, received_at=later), Call)
    assert isinstance(parse_message(raw, received_at=later - timedelta(seconds=1)), Invalid)


class _ClockAtUtc1630(datetime):
    """The clock of a server in UTC at 2026-02-28 16:30 (2026-03-01 00:30 in Shanghai)."""

    @classmethod
    def now(cls, tz=None):
        instant = datetime(2026, 2, 28, 16, 30, tzinfo=UTC)
        return instant.replace(tzinfo=None) if tz is None else instant.astimezone(tz)


def test_the_intake_clock_is_asia_shanghai_wall_time_whatever_the_server_zone(
    monkeypatch,
) -> None:
    """start_time is Shanghai wall time: the bound must be too, on a host set to UTC."""
    monkeypatch.setattr(message_module, "datetime", _ClockAtUtc1630)
    clock = intake_clock()
    assert clock == datetime(2026, 3, 1, 0, 30) and clock.tzinfo is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"null",
        b"42",
        b'"str"',
        b"{",
        b'{"a": NaN}',
        b"[" * 50000,
        "\ufeff{}".encode(),
        json.dumps(GOOD).encode("utf-16"),
    ],
)
def test_bodies_that_are_not_an_object_are_invalid(raw) -> None:
    assert isinstance(parse(raw), Invalid)


def test_lone_surrogate_is_invalid_rather_than_failing_the_insert() -> None:
    parsed = parse(body().replace(b'"2301"', b'"\\ud800"'))
    assert isinstance(parsed, Invalid)
    assert "ext" in parsed.reason
    assert parsed.call_id == GOOD["call_id"]


def test_huge_integer_is_invalid_without_raising() -> None:
    raw = body().replace(b'"duration": 95', b'"duration": ' + b"9" * 5000)
    assert isinstance(parse(raw), Invalid)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = st.one_of(
    json_values,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(min_size=60, max_size=200),
    st.sampled_from(
        [
            "'; DROP TABLE sublessor_call_log_201409; --",
            "1 OR 1=1",
            "\u202e\u0000",
            "🙂" * 64,
            "\u2473" * 40,
            "＋８６ １３８",
        ]
    ),
)
# Values the contract accepts, field by field (None: the optional field is absent).
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=MAX_STRING)
valid_values = {
    "call_id": _text.filter(bool),
    "sublessor_id": st.integers(1, INT_UNSIGNED_MAX),
    "prop_id": st.none() | st.integers(0, INT_UNSIGNED_MAX),
    "caller": _text.filter(lambda c: len(normalize_phone(c)) <= MAX_STRING),
    "called": _text,
    "ext": st.none() | _text,
    "status": st.integers(-(2**31), 2**31 - 1),
    "start_time": st.datetimes(datetime(2000, 1, 1), RECEIVED + message_module.MAX_START_AHEAD).map(
        lambda t: t.strftime("%Y-%m-%d %H:%M:%S")
    ),
    "duration": st.integers(0, INT_UNSIGNED_MAX),
    "call_type": st.sampled_from([None, "normal", "callback"]),
}
valid_messages = st.fixed_dictionaries(valid_values)
# Half valid messages of every shape, half with fields replaced by arbitrary values.
messages = valid_messages | st.dictionaries(
    st.sampled_from(sorted(GOOD) + ["other"]), field_values, max_size=len(GOOD) + 1
).map(lambda d: {**GOOD, **d})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages)
def test_every_valid_message_is_a_call_carrying_its_values(data: dict) -> None:
    parsed = parse(json.dumps(data).encode())
    assert isinstance(parsed, Call), parsed
    defaults = {"prop_id": 0, "ext": "", "call_type": "normal"}
    for name, value in data.items():
        expected = defaults[name] if value is None else value
        got = getattr(parsed, name)
        if name == "start_time":
            got = got.strftime("%Y-%m-%d %H:%M:%S")
        assert got == expected, name
    assert parsed.caller_normalized == normalize_phone(data["caller"])


def test_the_mixed_strategy_reaches_calls_other_than_the_template() -> None:
    """The property below checks what a Call holds: its input must often be one."""
    found = find(
        messages,
        lambda d: isinstance(parse(json.dumps(d).encode()), Call) and d != GOOD,
        settings=settings(database=None, max_examples=50, phases=[Phase.generate]),
    )
    assert found != GOOD


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse(raw), Call | Invalid)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_a_call_is_returned_only_when_every_field_fits_its_column(data: dict) -> None:
    parsed = parse(json.dumps(data).encode())
    assert isinstance(parsed, Call | Invalid)
    if isinstance(parsed, Invalid):
        assert parsed.reason
        return
    for name in ("call_id", "caller", "called", "ext"):
        value = getattr(parsed, name)
        assert isinstance(value, str) and len(value) <= MAX_STRING
        value.encode("utf-8")
    assert parsed.call_id
    assert len(parsed.caller_normalized) <= MAX_STRING
    assert type(parsed.sublessor_id) is int and 1 <= parsed.sublessor_id <= INT_UNSIGNED_MAX
    assert type(parsed.duration) is int and 0 <= parsed.duration <= INT_UNSIGNED_MAX
    assert type(parsed.status) is int and -(2**31) <= parsed.status < 2**31
    assert parsed.call_type in ("normal", "callback")
    assert parsed.start_time.strftime("%Y-%m-%d %H:%M:%S") == data["start_time"]


@settings(max_examples=200)
@given(json_values)
def test_json_of_any_shape_never_raises(value) -> None:
    assert isinstance(parse(json.dumps(value).encode()), Call | Invalid)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_the_common_shape_shortcut_agrees_with_the_full_validation(data: dict) -> None:
    # The shortcut may decline (None) but must never accept what the full checks refuse,
    # nor build a different call.
    data = json.loads(json.dumps(data))

    def outcome(check):
        try:
            return check(data)
        except message_module._Reject as exc:
            return f"refused: {exc}"

    latest = RECEIVED + message_module.MAX_START_AHEAD
    quick = outcome(lambda d: message_module._common_call(d, latest))
    full = outcome(lambda d: message_module._to_call(d, latest))
    assert quick is None or quick == full


@pytest.mark.parametrize(
    "changes", [{"ext": 0}, {"ext": False}, {"prop_id": False}, {"call_type": ""}, {"status": True}]
)
def test_falsy_non_null_optional_values_are_not_taken_for_absent(changes) -> None:
    assert isinstance(parse(body(**changes)), Invalid)
