"""A realistic, reproducible day of 400 calls with the people behind them.

Everything is generated from one seed, so two demo runs tell the same story:
some sublessors with money, two that run dry, one frozen account, brokers who
call listings, repeat callers, unanswered and short calls, callbacks, messages
the platform sends twice, and a handful of broken messages.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

DAY = date(2026, 11, 24)
PRICE_FEN = 4000


@dataclass
class Sublessor:
    sublessor_id: int
    balance_fen: int | None  # None: no account at the payment center
    frozen: bool = False
    listings: int = 0


@dataclass
class Contract:
    sublessor_id: int
    contract_no: str
    total_amount: int
    start_date: date
    end_date: date
    status: int = 1


@dataclass
class Scenario:
    brokers: list[tuple[int, str, str]] = field(default_factory=list)  # id, mobile as written, name
    sublessors: list[Sublessor] = field(default_factory=list)
    contracts: list[Contract] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def _written(rng: random.Random, mobile: str) -> str:
    """The same mobile in one of the forms carriers and CRMs write it."""
    forms = [
        mobile,
        f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
        f"0086{mobile}",
        f"0{mobile}",
        f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}",
    ]
    return rng.choice(forms)


def build(seed: int = 20261124, calls: int = 3000) -> Scenario:
    rng = random.Random(seed)
    sc = Scenario()

    broker_mobiles = [_mobile(rng) for _ in range(300)]
    for i, mobile in enumerate(broker_mobiles):
        written = "" if i % 25 == 0 else _written(rng, mobile)  # a few brokers have left
        sc.brokers.append((500000 + i, written, f"broker-{i}"))
    active_brokers = [m for i, m in enumerate(broker_mobiles) if i % 25 != 0]

    for n in range(12):
        sid = 10001 + n
        balance: int | None = 1_200_000 + rng.randrange(0, 20) * PRICE_FEN
        frozen = False
        if n in (3, 7):
            balance = 3 * PRICE_FEN + 1500  # runs dry after three calls
        if n == 10:
            frozen = True
        if n == 11:
            balance = None  # never opened an account
        sc.sublessors.append(Sublessor(sid, balance, frozen, listings=rng.randrange(3, 40)))
        start = DAY - timedelta(days=rng.randrange(30, 200))
        sc.contracts.append(
            Contract(sid, f"HT-{sid}-A", 500_000, start, start + timedelta(days=365))
        )
        if n % 3 == 0:  # a second, later contract that takes the rest
            sc.contracts.append(
                Contract(
                    sid, f"HT-{sid}-B", 500_000, DAY - timedelta(days=5), DAY + timedelta(days=360)
                )
            )
        if n % 4 == 1:  # an expired and a cancelled one that must take nothing
            sc.contracts.append(
                Contract(
                    sid,
                    f"HT-{sid}-OLD",
                    100_000,
                    DAY - timedelta(days=400),
                    DAY - timedelta(days=35),
                )
            )
            sc.contracts.append(
                Contract(
                    sid,
                    f"HT-{sid}-X",
                    100_000,
                    DAY - timedelta(days=10),
                    DAY + timedelta(days=20),
                    status=0,
                )
            )

    callers = [_mobile(rng) for _ in range(900)] + [
        f"021{rng.randrange(10**8):08d}" for _ in range(100)
    ]
    day_start = datetime(DAY.year, DAY.month, DAY.day, 8, 0, 0)
    sent: list[dict] = []
    for i in range(calls):
        roll = rng.random()
        if roll < 0.05:
            caller = _written(rng, rng.choice(active_brokers))
        elif roll < 0.20 and sent:
            caller = rng.choice(sent[-200:])["caller"]  # a repeat caller
        else:
            caller = (
                _written(rng, rng.choice(callers)) if rng.random() < 0.9 else rng.choice(callers)
            )
        sub = rng.choice(sc.sublessors[:11]) if rng.random() < 0.97 else sc.sublessors[11]
        start = day_start + timedelta(seconds=int(i * 14 * 3600 / calls) + rng.randrange(0, 10))
        msg = {
            "call_id": f"c-{DAY:%Y%m%d}-{i:06d}",
            "sublessor_id": sub.sublessor_id,
            "prop_id": rng.randrange(500000, 600000),
            "caller": caller if rng.random() > 0.01 else "anonymous",
            "called": f"400812{sub.sublessor_id % 10000:04d}",
            "ext": str(rng.randrange(1000, 9999)),
            "status": 1 if rng.random() > 0.15 else rng.choice([0, 2, 3]),
            "start_time": start.strftime("%Y-%m-%d %H:%M:%S"),
            "duration": rng.randrange(9, 600) if rng.random() > 0.1 else rng.randrange(0, 9),
            "call_type": "callback" if rng.random() < 0.05 else "normal",
        }
        if rng.random() < 0.1:
            msg["platform_trace"] = f"tr-{i}"  # unknown extra fields are allowed
        if rng.random() < 0.05:
            msg["ext"] = None  # null optional field counts as absent
        sent.append(msg)
        sc.messages.append(json.dumps(msg, ensure_ascii=False).encode())
        if rng.random() < 0.02:
            sc.messages.append(json.dumps(msg).encode())  # the platform published it twice

    broken = [
        b"\xff\xfe not json at all",
        b"[1, 2, 3]",
        json.dumps({"call_id": "c-broken-1", "sublessor_id": "10001"}).encode(),
        json.dumps({**sent[0], "call_id": "c-broken-2", "duration": -5}).encode(),
        json.dumps({**sent[1], "call_id": "c-broken-3", "call_type": "conference"}).encode(),
        json.dumps({**sent[2], "call_id": "x" * 80}).encode(),
        json.dumps(
            {**sent[3], "call_id": "c-broken-5", "start_time": "2026-02-30 10:00:00"}
        ).encode(),
        json.dumps({**sent[4], "call_id": "c-broken-6", "sublessor_id": 0}).encode(),
        json.dumps(
            {**sent[5], "call_id": "c-broken-7'; DROP TABLE x; --", "status": True}
        ).encode(),
    ]
    for payload in broken:
        sc.messages.insert(rng.randrange(len(sc.messages)), payload)
    sc.expected = {
        "published": len(sc.messages),
        "distinct_calls": len(sent),
        "broken": len(broken),
    }
    return sc
