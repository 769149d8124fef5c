"""Japanese eras (元号) and the era codes JPKI writes in front of a birthdate.

The signature certificate's birthdate is ``EYYYYMMDD``: an era code, then the Gregorian date.
Codes: 1 明治, 2 大正, 3 昭和, 4 平成, 5 令和; 0 means unknown.
"""

from __future__ import annotations

from datetime import date
from typing import Final

ERA_UNKNOWN: Final = 0

ERAS: Final = (
    # (code, name, first day, last day) in Gregorian dates.
    (1, "明治", date(1868, 1, 25), date(1912, 7, 29)),
    (2, "大正", date(1912, 7, 30), date(1926, 12, 24)),
    (3, "昭和", date(1926, 12, 25), date(1989, 1, 7)),
    (4, "平成", date(1989, 1, 8), date(2019, 4, 30)),
    (5, "令和", date(2019, 5, 1), date.max),
)


def era_code(day: date) -> int:
    """The era code of ``day``; ``ValueError`` before 明治."""
    for code, _name, first, last in ERAS:
        if first <= day <= last:
            return code
    raise ValueError(f"{day.isoformat()} is before the 明治 era")


def era_matches(code: int, day: date) -> bool:
    """Whether ``day`` falls in era ``code`` (code 0, unknown, matches any date)."""
    if code == ERA_UNKNOWN:
        return True
    for era, _name, first, last in ERAS:
        if era == code:
            return first <= day <= last
    return False
