"""Look the bill numbers of one page of contracts up in K3: one query, split only when K3 forces it.

K3 matches ``FBillNo`` with its database's collation: case and trailing spaces
ignored (contracts/k3-cloud.md), and on SQL Server collations without ``_WS``
full-width and half-width characters too (``ＨＴ-1`` answers for ``HT-1``). We
attribute the rows of a query for several numbers with ``bill_no_key``; a row
whose number is none of the numbers asked under that key could belong to any of
them, so it is never dropped (that would create the bill again): the numbers are
asked again in halves, down to one number per query, where every row K3 returns
is that number's bill, whatever its spelling.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from sublessor_billing.k3.api import bill_no_key

log = logging.getLogger(__name__)


class BillFinder(Protocol):
    def find_bills(self, bill_numbers: Iterable[str]) -> list[tuple[int, str]]: ...


def look_up_bills(client: BillFinder, numbers: Iterable[str]) -> dict[str, list[int]]:
    """``{bill_no_key(number): FIDs, lowest first}`` of the bills K3 holds under ``numbers``."""
    unique: dict[str, str] = {}
    for number in numbers:
        unique.setdefault(bill_no_key(number), number)
    found: dict[str, list[int]] = {}
    if unique:
        _look_up(client, list(unique.values()), found)
    return {key: sorted(set(fids)) for key, fids in found.items()}


def _look_up(client: BillFinder, numbers: Sequence[str], found: dict[str, list[int]]) -> None:
    rows = client.find_bills(numbers)
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
        half = len(numbers) // 2
        _look_up(client, numbers[:half], found)
        _look_up(client, numbers[half:], found)
        return
    for fid, number in rows:
        found.setdefault(bill_no_key(number), []).append(fid)
