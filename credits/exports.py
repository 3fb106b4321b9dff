"""CSV exports, streamed row by row (a spreadsheet opens them as they are): a customer's
transactions, and every customer's balance and expiring credits."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator

from django.db import connection
from django.http import StreamingHttpResponse
from django.utils import timezone

from . import selectors
from .models import CreditTransaction

HEADER = [
    "Date",
    "Type",
    "Memo",
    "Amount",
    "Balance after",
    "Expires on",
    "By",
    "Related",
    "Credits used or given back",
]
# Rows whose relations are read together (selectors.add_history_details).
DETAILS_CHUNK = 500
SPACE = "The space"


class _Echo:
    def write(self, value):
        return value


def _by(row: CreditTransaction, *, show_actor: bool) -> str:
    if made_by := getattr(row, "made_by", None):
        return made_by if show_actor else SPACE
    if row.actor_id is None:
        return "System"
    return row.actor.display_name if show_actor else SPACE


def csv_rows(rows: Iterable[CreditTransaction], *, show_actor: bool) -> Iterator[list[str]]:
    """Plain values: ISO dates, amounts as plain signed numbers (no thousands separator).

    Members (`show_actor=False`) never see an admin's name: an adjustment is by the space.
    """
    yield HEADER
    for row in _with_details(rows):
        yield [
            timezone.localtime(row.created_at).strftime("%Y-%m-%d %H:%M"),
            row.get_kind_display(),
            _neutralise_formula(row.memo),
            f"{row.amount:f}",
            f"{row.balance_after:f}",
            row.expires_on.isoformat() if row.expires_on else "",
            _neutralise_formula(_by(row, show_actor=show_actor)),
            _neutralise_formula("; ".join(relation.text for relation in row.relations)),
            row.lots_words,
        ]


def _with_details(rows: Iterable[CreditTransaction]) -> Iterator[CreditTransaction]:
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == DETAILS_CHUNK:
            yield from selectors.add_history_details(chunk)
            chunk = []
    if chunk:
        yield from selectors.add_history_details(chunk)


def _neutralise_formula(text: str) -> str:
    # A memo starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def stream_csv(rows, *, filename: str, show_actor: bool) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (
            writer.writerow(line)
            for line in csv_rows(rows.iterator(chunk_size=2000), show_actor=show_actor)
        ),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- Every customer's balance -----------------------------------------------------------

EXPIRING_DAYS = 30
CUSTOMER_HEADER = [
    "Type",
    "Customer ID",
    "Name",
    "Email",
    "Active",
    "Balance",
    f"Expiring within {EXPIRING_DAYS} days",
    "Next expiration",
    "Expiring then",
]

# One statement for every customer: the usable lots (time not up) per account and date,
# then per account; what expires soonest is the row of the smallest date.
CUSTOMER_BALANCES_SQL = """
WITH usable AS (
    SELECT account_id, expires_on, sum(remaining) AS credits FROM credits_creditlot
    WHERE remaining > 0 AND (expires_on IS NULL OR expires_on >= %(today)s)
    GROUP BY account_id, expires_on
), per_account AS (
    SELECT account_id, sum(credits) AS balance,
           sum(credits) FILTER (WHERE expires_on <= %(soon)s) AS expiring,
           min(expires_on) AS next_expiry
    FROM usable GROUP BY account_id
)
SELECT a.user_id, a.company_id, u.first_name, u.last_name, u.email, u.is_active,
       u.anonymised_at IS NOT NULL, c.name, c.email,
       coalesce(p.balance, 0), coalesce(p.expiring, 0), p.next_expiry, n.credits
FROM credits_creditaccount a
LEFT JOIN customers_user u ON u.id = a.user_id
LEFT JOIN customers_company c ON c.id = a.company_id
LEFT JOIN per_account p ON p.account_id = a.id
LEFT JOIN usable n ON n.account_id = a.id AND n.expires_on = p.next_expiry
ORDER BY a.company_id IS NOT NULL, lower(coalesce(u.first_name || ' ' || u.last_name, c.name)),
         a.user_id, a.company_id
"""


def customer_balance_rows() -> Iterator[list[str]]:
    today = timezone.localdate(timezone.now())
    params = {"today": today, "soon": today + dt.timedelta(days=EXPIRING_DAYS)}
    with connection.cursor() as cursor:
        cursor.execute(CUSTOMER_BALANCES_SQL, params)
        rows = cursor.fetchall()
    yield CUSTOMER_HEADER
    for (
        user_id,
        company_id,
        first_name,
        last_name,
        user_email,
        is_active,
        anonymised,
        company_name,
        company_email,
        balance,
        expiring,
        next_expiry,
        next_credits,
    ) in rows:
        if user_id:
            kind, customer_id = "User", f"user_{user_id}"
            name = f"Former member #{user_id}" if anonymised else f"{first_name} {last_name}"
            email = "" if anonymised else user_email
            active = "yes" if is_active else "no"
        else:
            kind, customer_id = "Company", f"company_{company_id}"
            name, email, active = company_name, company_email, ""
        yield [
            kind,
            customer_id,
            _neutralise_formula(name.strip() or email),
            _neutralise_formula(email),
            active,
            f"{balance:.2f}",
            f"{expiring:.2f}",
            next_expiry.isoformat() if next_expiry else "",
            f"{next_credits:.2f}" if next_expiry else "",
        ]


def customer_balances_csv(*, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(line) for line in customer_balance_rows()),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
