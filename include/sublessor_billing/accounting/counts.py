"""What recognising income did: the counts of one batch, or of a whole run summed."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class RecognitionCounts:
    """What one batch (or a whole run, summed) did; money in fen."""

    batches: int = 0
    payments_processed: int = 0  # payments the cursor passed, whatever their status
    income_rows: int = 0
    money_allocated: int = 0
    money_unallocated: int = 0
    late_settled_recognised: int = 0
    late_settled_dropped: int = 0
    newly_unsettled: int = 0
    cursor: int = 0

    def add(self, other: RecognitionCounts) -> None:
        for f in fields(self):
            if f.name != "cursor":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.cursor = other.cursor

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
