"""How an amount of credits is written, everywhere people read one: balances and tables
(the `credits_number` template filter), toasts, refusals, notices and emails."""

from decimal import Decimal

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def credits_number(amount) -> str:
    """'12.50', '1,000', '35': whole amounts without decimals, others with two."""
    if amount is None or amount == "":
        return ""
    amount = Decimal(str(amount))
    whole = amount == amount.to_integral_value()
    return f"{amount:,.0f}" if whole else f"{amount:,.2f}"


def format_credits(amount) -> str:
    """'25 credits', '1 credit', '2.50 credits', '1,000 credits' (the sign is left off)."""
    amount = abs(Decimal(str(amount)))
    number = credits_number(amount)
    return f"{number} credit" if amount == 1 else f"{number} credits"


def format_date(day) -> str:
    """'5 Jun 2026', as dates are written in notices and messages."""
    return f"{day.day} {day:%b %Y}"


@register.filter
def machine_datetime(moment) -> str:
    """'2026-06-05T14:30:07+01:00', for <time datetime>: local time to the second. Django's
    `date:'c'` writes microseconds, which HTML does not accept (at most three digits)."""
    if not moment:
        return ""
    return timezone.localtime(moment).isoformat(timespec="seconds")
