"""Phone number normalization (contracts/tables.md, "Phone numbers")."""

from __future__ import annotations

import re
import unicodedata

_NON_ASCII_DIGITS = re.compile(r"[^0-9]+")


def normalize_phone(raw: str | None) -> str:
    """Return the comparable form of a number; '' when it has no digits (withheld)."""
    # NFKC turns full-width digits (typed into CRM forms) into ASCII ones.
    digits = _NON_ASCII_DIGITS.sub("", unicodedata.normalize("NFKC", raw or ""))
    digits = _without_country_prefix(digits)
    if len(digits) == 12 and digits.startswith("0") and _is_mobile(digits[1:]):
        digits = digits[1:]
    return digits


def _without_country_prefix(digits: str) -> str:
    """Drop the international prefix `00` and China's country code `86` (steps 2 and 3).

    `00` is the international prefix whatever the country code after it (never
    0): `0086` loses it as the contract says, and `00852 9123 4567` is the same
    caller as `+852 9123 4567`. Repeated until neither applies, so that a
    normalized number normalizes to itself.
    """
    while True:
        if digits.startswith("00") and digits[2:3] not in ("", "0"):
            digits = digits[2:]
        elif digits.startswith("86") and len(digits) >= 12:
            rest = digits[2:]
            # International landlines get their area code's 0 back.
            digits = rest if rest.startswith("0") or _is_mobile(rest) else "0" + rest
        else:
            return digits


def _is_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits.startswith("1")


def mask_phone(raw: str | None) -> str:
    """Mask a number for logs, keeping only its last 4 digits."""
    digits = "".join(ch for ch in (raw or "") if "0" <= ch <= "9")
    if not digits:
        return "<none>"
    return "*" * max(len(digits) - 4, 0) + digits[-4:]
