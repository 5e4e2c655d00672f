"""Validate one 400 call notification against contracts/call400-message.md.

``parse_message`` never raises: every body, however malformed, becomes either a
``Call`` ready for the call log or an ``Invalid`` with the reason an operator reads
in ``call400_quarantine``. The intake time is an argument (``intake_clock()`` in
production), so what a message's ``start_time`` is compared with is explicit.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sublessor_billing.phone import normalize_phone

MAX_STRING = 64
INT_UNSIGNED_MAX = 2**32 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
CALL_TYPES = ("normal", "callback")
# start_time is Asia/Shanghai local time (UTC+8 all year since 1991, no DST).
CALL_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
# A start_time outside [EARLIEST_START_TIME, intake time + MAX_START_AHEAD] is not a
# call that happened: it is invalid (quarantined), never logged, judged or charged.
EARLIEST_START_TIME = datetime(2000, 1, 1)
MAX_START_AHEAD = timedelta(days=1)
_START_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")

# (field, required, default, minimum, maximum): integer columns of sublessor_call_log_201409.
_INT_FIELDS = (
    ("sublessor_id", True, None, 1, INT_UNSIGNED_MAX),
    ("prop_id", False, 0, 0, INT_UNSIGNED_MAX),
    ("status", True, None, INT_MIN, INT_MAX),
    ("duration", True, None, 0, INT_UNSIGNED_MAX),
)
# (field, required, default): VARCHAR(64) columns.
_STR_FIELDS = (
    ("call_id", True, None),
    ("caller", True, None),
    ("called", True, None),
    ("ext", False, ""),
)


@dataclass(frozen=True)
class Call:
    """A valid call, in the shape of a ``sublessor_call_log_201409`` row."""

    call_id: str
    sublessor_id: int
    prop_id: int
    caller: str
    caller_normalized: str
    called: str
    ext: str
    status: int
    start_time: datetime
    duration: int
    call_type: str

    def row(self) -> tuple:
        return (
            self.call_id,
            self.sublessor_id,
            self.prop_id,
            self.caller,
            self.caller_normalized,
            self.called,
            self.ext,
            self.status,
            self.start_time,
            self.duration,
            self.call_type,
        )


@dataclass(frozen=True)
class Invalid:
    """A message that cannot be logged; kept raw with this reason."""

    reason: str
    call_id: str | None = None


class _Reject(Exception):
    pass


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def intake_clock() -> datetime:
    """Now as Asia/Shanghai wall-clock time, naive like ``start_time``: the intake time."""
    return datetime.now(CALL_TZ).replace(tzinfo=None)


def parse_message(body: bytes, *, received_at: datetime) -> Call | Invalid:
    """Return the call a message body describes, or why it is invalid (never raises).

    ``received_at`` is the intake time (Asia/Shanghai, naive): a ``start_time``
    more than ``MAX_START_AHEAD`` after it is invalid.
    """
    latest = received_at + MAX_START_AHEAD
    try:
        data = _decode(body)
    except _Reject as exc:
        return Invalid(str(exc))
    call_id = data.get("call_id")
    hint = call_id[:255] if isinstance(call_id, str) and _encodable(call_id) else None
    try:
        return _common_call(data, latest) or _to_call(data, latest)
    except _Reject as exc:
        return Invalid(str(exc), hint)
    except Exception as exc:  # pragma: no cover - defensive: a bug must not block the queue
        return Invalid(f"unexpected validation error: {type(exc).__name__}", hint)


def _decode(body: bytes) -> dict:
    if not isinstance(body, bytes | bytearray):
        raise _Reject(f"body is {type(body).__name__}, not bytes")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        data = _JSON.decode(text)
    except (ValueError, RecursionError) as exc:
        raise _Reject(f"body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise _Reject(f"body is a JSON {type(data).__name__}, not an object")
    return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


# Built once: json.loads with any option builds a new decoder per call.
_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def _common_call(data: dict, latest: datetime) -> Call | None:
    """The usual message (ASCII strings, exact types, in range) checked in one pass.

    Anything unusual returns None and goes through ``_to_call``, which accepts a
    superset of what this accepts and gives the reason when it refuses.
    """
    get = data.get
    call_id, caller, called = get("call_id"), get("caller"), get("called")
    ext, call_type, start = get("ext"), get("call_type"), get("start_time")
    sublessor, prop, status, duration = (
        get("sublessor_id"),
        get("prop_id"),
        get("status"),
        get("duration"),
    )
    # Only an absent or null optional field takes its default (0 or false does not).
    if ext is None:
        ext = ""
    if call_type is None:
        call_type = "normal"
    if prop is None:
        prop = 0
    if not (
        type(call_id) is str
        and type(caller) is str
        and type(called) is str
        and type(ext) is str
        and type(start) is str
        and type(sublessor) is int
        and type(prop) is int
        and type(status) is int
        and type(duration) is int
        and 0 < len(call_id) <= MAX_STRING
        and len(caller) <= MAX_STRING
        and len(called) <= MAX_STRING
        and len(ext) <= MAX_STRING
        and (call_type == "normal" or call_type == "callback")
        and call_id.isascii()
        and caller.isascii()
        and called.isascii()
        and ext.isascii()
        and 1 <= sublessor <= INT_UNSIGNED_MAX
        and 0 <= prop <= INT_UNSIGNED_MAX
        and INT_MIN <= status <= INT_MAX
        and 0 <= duration <= INT_UNSIGNED_MAX
    ):
        return None
    normalized = normalize_phone(caller)
    if len(normalized) > MAX_STRING:
        return None
    return Call(
        call_id,
        sublessor,
        prop,
        caller,
        normalized,
        called,
        ext,
        status,
        _start_time(start, latest),
        duration,
        call_type,
    )


def _to_call(data: dict, latest: datetime) -> Call:
    values: dict = {}
    for name, required, default in _STR_FIELDS:
        values[name] = _string(data, name, required, default)
    if not values["call_id"]:
        raise _Reject("call_id is empty")
    for name, required, default, low, high in _INT_FIELDS:
        values[name] = _integer(data, name, required, default, low, high)
    values["start_time"] = _start_time(data.get("start_time"), latest)
    call_type = _string(data, "call_type", False, "normal")
    if call_type not in CALL_TYPES:
        raise _Reject(f"call_type {call_type!r} is not one of {', '.join(CALL_TYPES)}")
    normalized = normalize_phone(values["caller"])
    if len(normalized) > MAX_STRING:
        # NFKC can widen a character into several digits (e.g. a circled twenty).
        raise _Reject(f"caller normalizes to {len(normalized)} digits (at most {MAX_STRING})")
    return Call(
        caller_normalized=normalized,
        call_type=call_type,
        **values,
    )


def _string(data: dict, name: str, required: bool, default: str | None) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise _Reject(f"{name} is missing")
        return default
    if not isinstance(value, str):
        raise _Reject(f"{name} must be a string, got {_kind(value)}")
    if len(value) > MAX_STRING:
        raise _Reject(f"{name} is {len(value)} characters long (at most {MAX_STRING})")
    if not _encodable(value):
        raise _Reject(f"{name} holds characters that are not valid Unicode text")
    return value


def _integer(data: dict, name: str, required: bool, default, low: int, high: int) -> int:
    value = data.get(name)
    if value is None:
        if required:
            raise _Reject(f"{name} is missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Reject(f"{name} must be an integer, got {_kind(value)}")
    if not low <= value <= high:
        shown = str(value) if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
        raise _Reject(f"{name} = {shown} is outside [{low}, {high}]")
    return value


def _start_time(value: object, latest: datetime) -> datetime:
    if value is None:
        raise _Reject("start_time is missing")
    if not isinstance(value, str):
        raise _Reject(f"start_time must be a string, got {_kind(value)}")
    if not _START_TIME.fullmatch(value):
        raise _Reject(f"start_time {value[:40]!r} is not YYYY-MM-DD HH:MM:SS")
    try:
        # The regex fixed the layout; fromisoformat (C) then checks the calendar.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Reject(f"start_time {value!r} is not a real date and time") from None
    if parsed < EARLIEST_START_TIME:
        raise _Reject(f"start_time {value!r} is before {EARLIEST_START_TIME:%Y-%m-%d}")
    if parsed > latest:
        raise _Reject(
            f"start_time {value!r} is more than one day after the intake time "
            f"{latest - MAX_START_AHEAD:%Y-%m-%d %H:%M:%S} (Asia/Shanghai)"
        )
    return parsed


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        float: "a number with a fraction",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
