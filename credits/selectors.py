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
from django.db.models import CharField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.models import User
from spacecredits.db import server_bound_cursor
from spacecredits.formats import credits_number, format_date

from .models import (
    REVERSIBLE_KINDS,
    CreditHold,
    CreditLot,
    CreditLotReturn,
    CreditLotUsage,
    CreditTransaction,
    HoldStatus,
)
from .notices import lots_words

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
PAGE_SIZE = 25


def _account_id(customer) -> int:
    """The customer's account: every user and company has one from the start
    (credits/sql/open_accounts.sql). Views fetch it with the customer."""
    return customer.credit_account.pk


# A customer's usable credits per expiration date and what active holds earmark (the third
# column), in one query: the balance, its breakdown, held and available all come from it.
# Dated and never-expiring lots are read by two range scans of the open-lot index
# (account, expires_on) joined by UNION ALL: an OR of the two conditions would let
# PostgreSQL prefer the plain account index and read every lot the customer ever had.
# Plain SQL: this runs on every page that shows a balance, and building it with the ORM
# cost more than running it; prepared once per connection (spacecredits.db), as planning
# its three parts cost more than running them (psql: 2.7 ms planned, 0.7 ms run).
USABLE_TOTALS_SQL = """
SELECT expires_on, SUM(remaining), 0 FROM credits_creditlot
WHERE account_id = %(account)s AND remaining > 0 AND expires_on >= %(today)s
GROUP BY expires_on
UNION ALL
SELECT NULL, SUM(remaining), 0 FROM credits_creditlot
WHERE account_id = %(account)s AND remaining > 0 AND expires_on IS NULL
UNION ALL
SELECT l.expires_on, SUM(hl.amount), SUM(hl.amount) FILTER (WHERE h.expires_at > %(now)s)
FROM credits_credithold h
JOIN credits_creditholdlot hl ON hl.hold_id = h.id
JOIN credits_creditlot l ON l.id = hl.lot_id
WHERE h.account_id = %(account)s AND h.status = 'held'
  AND (h.expires_at > %(now)s OR l.expires_on IS NULL OR l.expires_on >= %(today)s)
GROUP BY l.expires_on
"""


@dataclass(frozen=True)
class Balances:
    """A customer's credits at one moment, from one query (get_balances)."""

    breakdown: list[tuple[dt.date | None, Decimal]]  # soonest first, never-expiring last, > 0
    held: Decimal  # what active holds (time not up) earmark; in the balance

    @property
    def balance(self) -> Decimal:
        return sum((amount for _, amount in self.breakdown), ZERO).quantize(CENT)

    @property
    def available(self) -> Decimal:
        return (self.balance - self.held).quantize(CENT)


def get_balances(customer) -> Balances:
    """The usable lots' credits per expiration date (time not up, even if not yet swept),
    held credits included, and what active holds earmark: balance, breakdown, held and
    available in one query."""
    now = timezone.now()
    params = {"account": _account_id(customer), "today": timezone.localdate(now), "now": now}
    with server_bound_cursor() as cursor:  # prepared once per connection
        cursor.execute(USABLE_TOTALS_SQL, params)
        rows = cursor.fetchall()
    totals: dict[dt.date | None, Decimal] = {}
    held = ZERO
    for day, total, held_now in rows:
        if total is not None:
            totals[day] = totals.get(day, ZERO) + total
        held += held_now or ZERO
    breakdown = sorted(totals.items(), key=lambda row: (row[0] is None, row[0]))
    return Balances(
        breakdown=[(day, total.quantize(CENT)) for day, total in breakdown if total > 0],
        held=held.quantize(CENT),
    )


def get_balance(customer) -> Decimal:
    """The credits the customer can spend now."""
    return get_balances(customer).balance


def get_held_balance(customer) -> Decimal:
    """The credits active holds earmark (holds whose time is not up)."""
    return get_balances(customer).held


def get_available_balance(customer) -> Decimal:
    """The balance minus what active holds earmark: what can be spent, held or moved."""
    return get_balances(customer).available


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
    return get_balances(customer).breakdown


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


# What made a row when no person did it themselves, as another app knows it: an
# expression giving a label ("API: Bookings"), or NULL. The api app registers its keys' in
# its ready(); credits names no other app.
_made_by: list = []


def register_made_by(expression) -> None:
    _made_by.append(expression)


def get_transactions(customer) -> QuerySet[CreditTransaction]:
    """The customer's transactions, newest first. `made_by` is the label of what made a
    row when another app did (register_made_by), else None."""
    rows = CreditTransaction.objects.filter(account_id=_account_id(customer))
    nobody = Value(None, output_field=CharField())
    made_by = Coalesce(*_made_by, nobody) if _made_by else nobody
    return rows.select_related("actor").annotate(made_by=made_by).order_by("-seq")


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


# --- What a row of the history relates to, and which credits it used ---------------------


@dataclass(frozen=True)
class Relation:
    """A row's link to another row: `text` ("Reversed by the reversal of 2 Jun 2026",
    "Transfer to Acme Ltd", "For Tom Becker"); `customer` and `row` say where it points
    (the row may be another customer's: a transfer's other side); no row: a person."""

    text: str
    customer: object = None
    row: CreditTransaction | None = None


def _day(row) -> str:
    return format_date(timezone.localdate(row.created_at))


def _lot_parts(rows) -> list[tuple[Decimal, dt.date | None]]:
    """(amount, expiration) summed per expiration date, soonest first, never last."""
    totals: dict[dt.date | None, Decimal] = {}
    for amount, expires_on in rows:
        totals[expires_on] = totals.get(expires_on, ZERO) + amount
    order = sorted(totals, key=lambda day: (day is None, day or dt.date.max))
    return [(totals[day], day) for day in order]


def row_link(list_url: str, row) -> str:
    """Where one row of a customer's history is shown: the page that starts with it."""
    return f"{list_url}?before={row.seq + 1}#tx-{row.pk}"


def add_history_details(rows: list[CreditTransaction], *, list_url_of=None):
    """Give each row of a page `relations` (list of Relation), `relation_links`
    ({"text", "url"}: `list_url_of(customer)` is the transactions page of a related row's
    customer, or None where the reader may not go) and `lots_words` (which credits a
    deduction, charge, expiry or transfer used, or where a reversal or refund gave them
    back: "5 from credits expiring 4 Dec 2026, 1 from credits that never expire"), in a
    fixed number of queries for the page."""
    ids = [row.pk for row in rows]
    linked_ids = {
        pk
        for row in rows
        for pk in (row.reverses_id, row.refunded_charge_id, row.transfer_out_id)
        if pk
    }
    related = (
        CreditTransaction.objects.order_by()
        .select_related("account__user", "account__company")
        .filter(
            Q(pk__in=linked_ids)
            | Q(reverses_id__in=ids)
            | Q(refunded_charge_id__in=ids)
            | Q(transfer_out_id__in=ids)
        )
    )
    by_id = {other.pk: other for other in related}
    reversed_by, refunds, transfer_in = {}, {}, {}
    for other in by_id.values():
        if other.reverses_id in ids:
            reversed_by[other.reverses_id] = other
        if other.refunded_charge_id in ids:
            refunds.setdefault(other.refunded_charge_id, []).append(other)
        if other.transfer_out_id in ids:
            transfer_in[other.transfer_out_id] = other
    people = {
        user.pk: user
        for user in User.objects.filter(
            pk__in={r.on_behalf_of_id for r in rows if r.on_behalf_of_id}
        )
    }
    used: dict[int, list] = {}
    for transaction_id, amount, expires_on in CreditLotUsage.objects.filter(
        transaction_id__in=[row.pk for row in rows if row.amount < 0]
    ).values_list("transaction_id", "amount", "lot__expires_on"):
        used.setdefault(transaction_id, []).append((amount, expires_on))
    given: dict[int, list] = {}
    givers = [row.pk for row in rows if row.kind in ("reversal", "refund") and row.amount > 0]
    for transaction_id, amount, expires_on, grace_expires_on in CreditLotReturn.objects.filter(
        transaction_id__in=givers
    ).values_list("transaction_id", "amount", "lot__expires_on", "grace_lot__expires_on"):
        given.setdefault(transaction_id, []).append((amount, grace_expires_on or expires_on))

    for transaction_id, amount, expires_on in CreditLot.objects.filter(
        allocation_id__in=[row.pk for row in rows if row.kind == "transfer_in"]
    ).values_list("allocation_id", "amount", "expires_on"):
        given.setdefault(transaction_id, []).append((amount, expires_on))

    for row in rows:
        relations = []
        if row.reverses_id and row.reverses_id in by_id:
            undone = by_id[row.reverses_id]
            what = "addition" if undone.amount > 0 else "deduction"
            relations.append(
                Relation(
                    f"Reversal of the {what} of {_day(undone)}", undone.account.customer, undone
                )
            )
        if row.pk in reversed_by:
            reversal = reversed_by[row.pk]
            relations.append(
                Relation(
                    f"Reversed by the reversal of {_day(reversal)}",
                    reversal.account.customer,
                    reversal,
                )
            )
        if row.refunded_charge_id and row.refunded_charge_id in by_id:
            charge = by_id[row.refunded_charge_id]
            relations.append(
                Relation(
                    f"Refund of the booking of {_day(charge)}", charge.account.customer, charge
                )
            )
        for refund in sorted(refunds.get(row.pk, []), key=lambda r: r.seq):
            relations.append(
                Relation(
                    f"Refunded {credits_number(refund.amount)} on {_day(refund)}",
                    refund.account.customer,
                    refund,
                )
            )
        if row.pk in transfer_in:
            other = transfer_in[row.pk]
            relations.append(
                Relation(
                    f"Transfer to {other.account.customer.display_name}",
                    other.account.customer,
                    other,
                )
            )
        if row.transfer_out_id and row.transfer_out_id in by_id:
            other = by_id[row.transfer_out_id]
            relations.append(
                Relation(
                    f"Transfer from {other.account.customer.display_name}",
                    other.account.customer,
                    other,
                )
            )
        if row.on_behalf_of_id in people:
            relations.append(Relation(f"For {people[row.on_behalf_of_id].display_name}"))
        row.relations = relations
        row.reversal_row = reversed_by.get(row.pk)
        row.relation_links = []
        for relation in relations:
            list_url = list_url_of(relation.customer) if list_url_of and relation.row else None
            url = row_link(list_url, relation.row) if list_url else None
            row.relation_links.append({"text": relation.text, "url": url})
        if row.pk in used:
            row.lots_words = lots_words(_lot_parts(used[row.pk]))
        elif row.pk in given:
            row.lots_words = lots_words(_lot_parts(given[row.pk]), "to")
        else:
            row.lots_words = ""
    return rows


def get_reversible_ids(rows: list[CreditTransaction]) -> set[int]:
    """The rows of a page that reverse_transaction would accept now: an admin's deduction
    not yet reversed, or an admin's addition not yet reversed whose lot holds credits."""
    candidates = [row for row in rows if row.kind in REVERSIBLE_KINDS]
    if not candidates:
        return set()
    ids = [row.pk for row in candidates]
    if all(hasattr(row, "reversal_row") for row in candidates):  # add_history_details read it
        reversed_ids = {row.pk for row in candidates if row.reversal_row}
    else:
        reversed_ids = set(
            CreditTransaction.objects.filter(reverses_id__in=ids).values_list(
                "reverses_id", flat=True
            )
        )
    with_credits = set(
        CreditLot.objects.filter(allocation_id__in=ids, remaining__gt=0).values_list(
            "allocation_id", flat=True
        )
    )
    return {
        row.pk
        for row in candidates
        if row.pk not in reversed_ids and (row.amount < 0 or row.pk in with_credits)
    }
