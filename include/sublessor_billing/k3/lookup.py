"""Look the bill numbers of one page of contracts up in K3: one query, split only when K3 forces it.

K3 matches ``FBillNo`` with its database's collation: case and trailing spaces
ignored (contracts/k3-cloud.md), and on SQL Server collations without ``_WS``
full-width and half-width characters too (``ＨＴ-1`` answers for ``HT-1``). We
attribute the rows of a query for several numbers with ``bill_no_key``; a row
whose number is none of the numbers asked under that key could belong to any of
them, so it is never dropped (that would create the bill again): the numbers are
asked again in halves, down to one number per query, where every row K3 returns
is that number's bill, whatever its spelling.

K3 may also answer a query with an error because of one number (its filter
parser, a length limit...). Stopping the run there would stall every run at that
page forever, so the numbers are asked again in halves down to the single number
K3 rejects, which is reported ``rejected`` (its contract is refused, never created)
while the rest go on. First one query for no bill at all (``FBillNo=''``) tells
apart a K3 that rejects every query: that error stops the run as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sublessor_billing.k3.api import QueryRejected, bill_no_key

log = logging.getLogger(__name__)


class BillFinder(Protocol):
    def find_bills(self, bill_numbers: Iterable[str]) -> list[tuple[int, str]]: ...


@dataclass
class BillLookup:
    found: dict[str, list[int]] = field(default_factory=dict)  # bill_no_key -> FIDs, lowest first
    rejected: dict[str, str] = field(default_factory=dict)  # bill_no_key -> K3's error
    k3_answers: bool = False  # a query for no number succeeded: K3 itself works

    def is_rejected(self, number: str) -> bool:
        return bill_no_key(number) in self.rejected


def look_up_bills(client: BillFinder, numbers: Iterable[str]) -> BillLookup:
    """The bills K3 holds under ``numbers``, and the numbers whose look-up K3 rejects."""
    unique: dict[str, str] = {}
    for number in numbers:
        unique.setdefault(bill_no_key(number), number)
    lookup = BillLookup()
    if unique:
        _look_up(client, list(unique.values()), lookup)
    lookup.found = {key: sorted(set(fids)) for key, fids in lookup.found.items()}
    return lookup


def _look_up(client: BillFinder, numbers: Sequence[str], lookup: BillLookup) -> None:
    try:
        rows = client.find_bills(numbers)
    except QueryRejected as exc:
        if not lookup.k3_answers:
            _check_k3_answers(client, exc)
            lookup.k3_answers = True
        if len(numbers) == 1:
            log.error("K3 rejects the look-up of bill number %r: %s", numbers[0], exc)
            lookup.rejected[bill_no_key(numbers[0])] = str(exc)
        else:
            _split(client, numbers, lookup)
        return
    found = lookup.found
    if len(numbers) == 1:
        key = bill_no_key(numbers[0])
        for fid, number in rows:
            if bill_no_key(number) != key:
                log.warning(
                    "K3 answers bill FID %s numbered %r for %r: K3 compares them as equal, so it "
                    "is that number's bill",
                    fid,
                    number,
                    numbers[0],
                )
            found.setdefault(key, []).append(fid)
        return
    asked = {bill_no_key(number) for number in numbers}
    strays = [(fid, number) for fid, number in rows if bill_no_key(number) not in asked]
    if strays:
        log.warning(
            "K3 answered bills %s for none of the %d numbers asked (as we compare numbers); "
            "asking again in halves to learn whose they are",
            ", ".join(f"FID {fid} {number!r}" for fid, number in strays[:10]),
            len(numbers),
        )
        _split(client, numbers, lookup)
        return
    for fid, number in rows:
        found.setdefault(bill_no_key(number), []).append(fid)


def _split(client: BillFinder, numbers: Sequence[str], lookup: BillLookup) -> None:
    half = len(numbers) // 2
    _look_up(client, numbers[:half], lookup)
    _look_up(client, numbers[half:], lookup)


def _check_k3_answers(client: BillFinder, rejection: QueryRejected) -> None:
    """Raise the error of a query for no bill number if K3 rejects that too (K3 itself fails)."""
    try:
        client.find_bills([""])  # FBillNo='': no bill has an empty number
    except QueryRejected:
        log.error(
            "K3 rejects even a look-up naming no contract (%s): K3 is failing, not one number",
            rejection,
        )
        raise
