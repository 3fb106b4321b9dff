"""Whole numbers read from a query string or a form: page numbers, cursors, ids.

Python's `int()` reads the digits of every script ("١٠" is 10, "５" is 5) and numbers of any
length, and `"²".isdigit()` is true though `int("²")` raises. A number here is ASCII digits
only, within the range of a PostgreSQL bigint, so an odd value is refused with a message
instead of reaching the database (or raising) as something nobody typed.
"""

from __future__ import annotations

import re

from django.core.paginator import Page, Paginator

BIGINT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def whole_number(value, *, minimum: int = 0) -> int | None:
    """`value` as an int when it is ASCII digits from `minimum` to BIGINT_MAX, else None."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if minimum <= number <= BIGINT_MAX else None


def get_page(paginator: Paginator, value: str | None) -> tuple[Page, str]:
    """The page `value` (a `?page=` parameter) asks for, and a message when there is none
    of that number: then the first page (not a number) or the last (past the end)."""
    if value is None or value == "":
        return paginator.page(1), ""
    number = whole_number(value, minimum=1)
    if number is None:
        return paginator.page(1), "That is not a page number: this is the first page."
    if number > paginator.num_pages:
        last = paginator.num_pages
        return paginator.page(last), f"There is no page {number}: this is the last page."
    return paginator.page(number), ""
