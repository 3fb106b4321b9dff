"""Every read of the ledger that is more than a lookup.

Balance, breakdown and the newest page of transactions read only open lots (a partial
index) and the newest rows of one account (index on account, seq): their cost does not
grow with the length of a customer's history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import CreditHold, CreditLot, CreditTransaction, HoldStatus

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
PAGE_SIZE = 25


def _account_id(customer) -> int:
    """The customer's account: every user and company has one from the start
    (credits/sql/open_accounts.sql). Views fetch it with the customer."""
    return customer.credit_account.pk


# Dated and never-expiring lots are read by two range scans of the open-lot index
# (account, expires_on) joined by UNION ALL: an OR of the two conditions would let
# PostgreSQL prefer the plain account index and read every lot the customer ever had.
# Plain SQL: this runs on every page that shows a balance, and building it with the ORM
# cost more than running it.
USABLE_TOTALS_SQL = """
SELECT expires_on, SUM(remaining) FROM credits_creditlot
WHERE account_id = %(account)s AND remaining > 0 AND expires_on >= %(today)s
GROUP BY expires_on
UNION ALL
SELECT NULL, SUM(remaining) FROM credits_creditlot
WHERE account_id = %(account)s AND remaining > 0 AND expires_on IS NULL
UNION ALL
SELECT l.expires_on, SUM(hl.amount) FROM credits_credithold h
JOIN credits_creditholdlot hl ON hl.hold_id = h.id
JOIN credits_creditlot l ON l.id = hl.lot_id
WHERE h.account_id = %(account)s AND h.status = 'held'
  AND (h.expires_at > %(now)s OR l.expires_on IS NULL OR l.expires_on >= %(today)s)
GROUP BY l.expires_on
"""


def _usable_totals(customer) -> list[tuple[dt.date | None, Decimal]]:
    """(expiration date or None, credits) of the usable lots (time not up, even if not
    yet swept) and of what holds earmark of them, in one query."""
    now = timezone.now()
    params = {"account": _account_id(customer), "today": timezone.localdate(now), "now": now}
    with connection.cursor() as cursor:
        cursor.execute(USABLE_TOTALS_SQL, params)
        rows = cursor.fetchall()
    totals: dict[dt.date | None, Decimal] = {}
    for day, total in rows:
        if total is not None:
            totals[day] = totals.get(day, ZERO) + total
    return [(day, total.quantize(CENT)) for day, total in totals.items()]


def get_balance(customer) -> Decimal:
    """The credits the customer can spend now."""
    total = sum((total for _, total in _usable_totals(customer)), ZERO)
    return total.quantize(CENT)


def get_held_balance(customer) -> Decimal:
    """The credits active holds earmark (holds whose time is not up)."""
    held = CreditHold.objects.filter(
        account_id=_account_id(customer), status=HoldStatus.HELD, expires_at__gt=timezone.now()
    ).aggregate(total=Sum("amount"))["total"]
    return (held or ZERO).quantize(CENT)


def get_available_balance(customer) -> Decimal:
    """The balance minus what active holds earmark: what can be spent, held or moved."""
    return (get_balance(customer) - get_held_balance(customer)).quantize(CENT)


def get_active_holds(customer) -> QuerySet[CreditHold]:
    """The customer's holds that still earmark credits, soonest end first."""
    return CreditHold.objects.filter(
        account_id=_account_id(customer), status=HoldStatus.HELD, expires_at__gt=timezone.now()
    ).order_by("expires_at", "pk")


def get_monthly_limit_left(membership) -> Decimal | None:
    """What is left this month (the space's zone) of a member's monthly limit of their
    company's credits, net of refunds; None when the member has no limit. The same SQL
    function the charge checks (credits_month_spent)."""
    if membership.monthly_credit_limit is None:
        return None
    account = membership.company.credit_account
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credits_month_spent(%s, %s, %s, %s)",
            [account.pk, membership.user_id, timezone.now(), str(timezone.get_default_timezone())],
        )
        spent = cursor.fetchone()[0]
    return max(membership.monthly_credit_limit - spent, ZERO).quantize(CENT)


def get_expiration_breakdown(customer) -> list[tuple[dt.date | None, Decimal]]:
    """(expiration date or None, credits) soonest first, never-expiring last, only > 0."""
    rows = sorted(_usable_totals(customer), key=lambda row: (row[0] is None, row[0]))
    return [(expires_on, total.quantize(CENT)) for expires_on, total in rows if total > 0]


def balance_subquery():
    """An annotation giving each User or Company row its balance in the same query:
    `User.objects.annotate(credit_balance=balance_subquery())`."""
    today = timezone.localdate(timezone.now())
    usable = (
        CreditLot.objects.filter(account=OuterRef("credit_account"), remaining__gt=0)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=today))
        .order_by()
        .values("account")
        .annotate(total=Sum("remaining"))
        .values("total")
    )
    return Coalesce(Subquery(usable), Value(ZERO))


def get_transactions(customer) -> QuerySet[CreditTransaction]:
    """The customer's transactions, newest first."""
    return (
        CreditTransaction.objects.filter(account_id=_account_id(customer))
        .select_related("actor")
        .order_by("-seq")
    )


def filter_transactions(
    customer,
    *,
    kinds: list[str] | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[CreditTransaction]:
    """get_transactions narrowed by kind and by a date range (inclusive, space's time zone)."""
    rows = get_transactions(customer)
    if kinds:
        rows = rows.filter(kind__in=kinds)
    zone = timezone.get_default_timezone()
    # An account's history is in time order (seq and created_at rise together), so a date
    # bound is also a seq bound, found with one probe of the (account, created_at) index;
    # the page then walks the (account, seq) index instead of every row of a long history.
    history = get_transactions(customer).order_by()
    if date_from:
        start = dt.datetime.combine(date_from, dt.time.min, zone)
        first = history.filter(created_at__gte=start).order_by("created_at", "seq")
        rows = rows.filter(created_at__gte=start, seq__gte=Subquery(first.values("seq")[:1]))
    if date_to:
        end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, zone)
        last = history.filter(created_at__lt=end).order_by("-created_at", "-seq")
        rows = rows.filter(created_at__lt=end, seq__lte=Subquery(last.values("seq")[:1]))
    return rows


@dataclass(frozen=True)
class TransactionPage:
    """One page of a keyset-paginated transaction list (newest first).

    `older` / `newer` are the cursors (a `seq`) for the next and previous pages, or None.
    """

    rows: list[CreditTransaction]
    older: int | None
    newer: int | None


def get_transaction_page(
    rows: QuerySet[CreditTransaction],
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> TransactionPage:
    """A page of `rows` older than `before` or newer than `after` (by seq), never OFFSET.

    Cost depends on the page size, not on how deep the page is.
    """
    if after is not None:
        newer_first = list(rows.filter(seq__gt=after).order_by("seq")[: size + 1])
        has_newer = len(newer_first) > size
        page = list(reversed(newer_first[:size]))
        has_older = bool(page) and rows.filter(seq__lt=page[-1].seq).exists()
    else:
        if before is not None:
            rows = rows.filter(seq__lt=before)
        fetched = list(rows.order_by("-seq")[: size + 1])
        page = fetched[:size]
        has_older = len(fetched) > size
        has_newer = before is not None and bool(page)
    return TransactionPage(
        rows=page,
        older=page[-1].seq if has_older else None,
        newer=page[0].seq if has_newer else None,
    )


# The balance at the end of each day: per day, the newest transaction before that day
# ended, found by one probe of the (account, created_at) index.
BALANCE_HISTORY_SQL = """
WITH day_ends(position, day_end) AS (VALUES {values})
SELECT position, (
    SELECT balance_after FROM credits_credittransaction
    WHERE account_id = %s AND created_at < day_ends.day_end
    ORDER BY created_at DESC, seq DESC LIMIT 1
)
FROM day_ends ORDER BY position
"""


def get_balance_history(
    customer, *, days: int = 90, balance_now: Decimal | None = None
) -> list[tuple[dt.date, Decimal]]:
    """The balance at the end of each of the last `days` days, oldest first; today's is
    the balance now (`balance_now` when the caller has it already).

    One short SQL statement with one index probe per day, so its cost depends on `days`,
    never on how many transactions the customer has.
    """
    today = timezone.localdate(timezone.now())
    zone = timezone.get_default_timezone()
    days_shown = [today - dt.timedelta(days=back) for back in range(days - 1, 0, -1)]
    balances = [ZERO] * len(days_shown)
    if days_shown:
        values, params = [], []
        for position, day in enumerate(days_shown):
            day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, zone)
            values.append("(%s, %s)")
            params += [position, connection.ops.adapt_datetimefield_value(day_end)]
        sql = BALANCE_HISTORY_SQL.format(values=", ".join(values))
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, _account_id(customer)])
            for position, balance in cursor.fetchall():
                if balance is not None:
                    balances[position] = balance.quantize(CENT)
    now = get_balance(customer) if balance_now is None else balance_now
    return [*zip(days_shown, balances, strict=True), (today, now)]
