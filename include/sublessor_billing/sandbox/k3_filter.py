"""How the sandbox K3 reads a FilterString and compares bill numbers (its own rules, for tests).

Written apart from the export's ``sublessor_billing.k3.api`` on purpose: a test
against the sandbox must not pass merely because both sides share one mistake.
"""

from __future__ import annotations

import re

_ONE = re.compile(r"^\s*FBillNo\s*=\s*'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_IN = re.compile(r"^\s*FBillNo\s+IN\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_LITERAL = re.compile(r"\s*'((?:[^']|'')*)'\s*")
# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space, folded to their half-width forms.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def k3_collation_key(bill_no: str, *, width_insensitive: bool = False) -> str:
    """How the sandbox K3 compares bill numbers (its own rule, not the export's ``bill_no_key``).

    Like K3's SQL Server collation ``Chinese_PRC_CI_AS``: case-insensitive, trailing
    spaces ignored (padding), leading spaces count; ``width_insensitive`` also folds
    full-width characters, as collations without ``_WS`` do.
    """
    text = str(bill_no)
    if width_insensitive:
        text = text.translate(_HALF_WIDTH)
    return text.rstrip(" ").lower()


def parse_bill_filter(text: str) -> list[str] | None:
    """Bill numbers named by ``FBillNo='x'`` or ``FBillNo IN ('x','y')``; None = no filter."""
    if not text.strip():
        return None
    if match := _ONE.match(text):
        return [match.group(1).replace("''", "'")]
    if match := _IN.match(text):
        inner, numbers, pos = match.group(1), [], 0
        while lit := _LITERAL.match(inner, pos):
            numbers.append(lit.group(1).replace("''", "'"))
            pos = lit.end()
            if pos == len(inner):
                return numbers
            if inner[pos] != ",":
                break
            pos += 1
    raise ValueError(f"sandbox K3 understands only FBillNo='..' or FBillNo IN (..); got {text!r}")
