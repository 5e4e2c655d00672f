"""Phone number normalization (contracts/tables.md, "Phone numbers")."""

from __future__ import annotations

import re
import unicodedata

_NON_ASCII_DIGITS = re.compile(r"[^0-9]+")


def normalize_phone(raw: str | None) -> str:
    """Return the comparable form of a number; '' when it has no digits (withheld)."""
    # NFKC turns full-width digits (typed into CRM forms) into ASCII ones.
    digits = _NON_ASCII_DIGITS.sub("", unicodedata.normalize("NFKC", raw or ""))
    if digits.startswith("0086"):
        digits = digits[2:]
    if digits.startswith("86") and len(digits) >= 12:
        rest = digits[2:]
        # International landlines get their area code's 0 back.
        digits = rest if rest.startswith("0") or _is_mobile(rest) else "0" + rest
    if len(digits) == 12 and digits.startswith("0") and _is_mobile(digits[1:]):
        digits = digits[1:]
    return digits


def _is_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits.startswith("1")


def mask_phone(raw: str | None) -> str:
    """Mask a number for logs, keeping only its last 4 digits."""
    digits = "".join(ch for ch in (raw or "") if "0" <= ch <= "9")
    if not digits:
        return "<none>"
    return "*" * max(len(digits) - 4, 0) + digits[-4:]


_LONG_DIGIT_RUN = re.compile(r"\d{7,}")


def mask_numbers(text: str) -> str:
    """Mask every run of 7 or more digits in free text (an error message) for logs."""
    return _LONG_DIGIT_RUN.sub(lambda found: mask_phone(found.group()), text)
