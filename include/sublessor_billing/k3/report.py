"""What one export run did: counts for XCom, and the contracts it did not export, with why."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Refusal:
    """A contract this run did not export, and why."""

    contract_id: int
    contract_no: str
    message: str


@dataclass
class ExportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    waiting: list[Refusal] = field(default_factory=list)  # a create K3 may still commit
    conflicts: list[Refusal] = field(default_factory=list)  # shared a bill: for an operator

    @property
    def refused(self) -> int:
        return len(self.refusals)

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": self.refused,
            "waiting": len(self.waiting),
            "conflict": len(self.conflicts),
        }

    def failure_message(self, limit: int = 20) -> str | None:
        """Why the run must fail (None when every contract was exported or is only waiting)."""
        parts = []
        if self.refusals:
            parts.append(
                f"K3 Cloud refused {self.refused} contract(s). Fix the data in CRM or K3; "
                "the next run retries them:" + _listed(self.refusals, limit)
            )
        if self.conflicts:
            parts.append(
                f"{len(self.conflicts)} contract(s) shared a K3 bill with another contract "
                "(set aside in k3_contract_export_conflict). Nothing is sent for them until an "
                "operator decides with finance which contract owns each bill and resolves them "
                'as docs/k3_contract_export.md says ("Contracts that shared one K3 bill"):'
                + _listed(self.conflicts, limit)
            )
        if not parts:
            return None
        return f"K3 contract export: the others were exported ({self.counts()}).\n" + "\n".join(
            parts
        )


def _listed(contracts: list[Refusal], limit: int) -> str:
    lines = [
        f"contract {r.contract_no} (id {r.contract_id}): {r.message}" for r in contracts[:limit]
    ]
    if len(contracts) > limit:
        lines.append(f"... and {len(contracts) - limit} more")
    return "\n  " + "\n  ".join(lines)
