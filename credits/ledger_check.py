"""The ledger checks itself: `python manage.py check_ledger` and the nightly beat task.

The database refuses what would break the ledger as it is written (credits/sql/
append_only.sql); these checks read what is there, for the day something got past the
guards anyway (a restore from a bad backup, a superuser with the triggers off, a bug in a
guard). Each check is one set-based query over every account (or the ones named), so
the whole run costs a few scans of the ledger's tables however many accounts there are
(docs/ledger.md, "Checking the ledger", has the time on a million transactions).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection
from django.utils import timezone

from customers.models import User

from .models import CreditAccount

logger = logging.getLogger(__name__)

# A check prints at most this many of its mismatches (and how many there are in all).
SHOWN_PER_CHECK = 50

# Lots whose last day ended longer ago than this and still hold credits: the expiry sweep
# (every 5 minutes) has not run, so the balance members see (unexpired lots) is no longer
# the ledger's balance.
EXPIRY_GRACE = dt.timedelta(days=1)


@dataclass(frozen=True)
class Check:
    name: str
    sql: str  # {accounts} is a condition on the alias "x" (an account id column)
    describe: str  # str.format(**row) of each mismatching row
    account_column: str = "account_id"  # x's column that names the account


# Every query answers its mismatching rows, each with its `account_id` (run_checks
# keeps the first SHOWN_PER_CHECK of them, and counts them all).
CHECKS = [
    Check(
        "transaction chain",
        """
        SELECT account_id, seq, amount, balance_after, previous_seq, previous_balance
        FROM (
            SELECT x.account_id, x.seq, x.amount, x.balance_after,
                   coalesce(lag(x.seq) OVER w, 0) AS previous_seq,
                   coalesce(lag(x.balance_after) OVER w, 0) AS previous_balance
            FROM credits_credittransaction x
            WHERE {accounts}
            WINDOW w AS (PARTITION BY x.account_id ORDER BY x.seq)
        ) t
        WHERE seq <> previous_seq + 1 OR balance_after <> previous_balance + amount
        """,
        "transaction {seq} follows {previous_seq} and says {amount:+} makes {balance_after},"
        " but {previous_balance} {amount:+} is {expected}",
    ),
    Check(
        "balance = newest balance_after",
        """
        SELECT x.id AS account_id, x.balance, x.last_seq,
               coalesce(newest.seq, 0) AS newest_seq,
               coalesce(newest.balance_after, 0) AS newest_balance
        FROM credits_creditaccount x
        LEFT JOIN LATERAL (
            SELECT t.seq, t.balance_after FROM credits_credittransaction t
            WHERE t.account_id = x.id ORDER BY t.seq DESC LIMIT 1
        ) newest ON true
        WHERE {accounts}
          AND (x.balance <> coalesce(newest.balance_after, 0)
               OR x.last_seq <> coalesce(newest.seq, 0))
        """,
        "the account says balance {balance} after transaction {last_seq}; its newest"
        " transaction, {newest_seq}, says {newest_balance}",
        account_column="id",
    ),
    Check(
        "lot remaining = amount - usages",
        # Less what its usages took and what active holds earmark, plus what reversals
        # and refunds gave back to it (a share that went into a grace lot is that lot's).
        """
        SELECT x.account_id, x.id AS lot_id, x.amount, x.remaining,
               coalesce(u.used, 0) AS used, coalesce(r.returned, 0) AS returned,
               coalesce(h.held, 0) AS held
        FROM credits_creditlot x
        LEFT JOIN (SELECT lot_id, sum(amount) AS used FROM credits_creditlotusage
                   GROUP BY lot_id) u ON u.lot_id = x.id
        LEFT JOIN (SELECT lot_id, sum(amount) AS returned FROM credits_creditlotreturn
                   WHERE grace_lot_id IS NULL GROUP BY lot_id) r ON r.lot_id = x.id
        LEFT JOIN (SELECT hl.lot_id, sum(hl.amount) AS held
                   FROM credits_creditholdlot hl
                   JOIN credits_credithold hold ON hold.id = hl.hold_id
                   WHERE hold.status = 'held' GROUP BY hl.lot_id) h ON h.lot_id = x.id
        WHERE {accounts}
          AND x.remaining <> x.amount - coalesce(u.used, 0) + coalesce(r.returned, 0)
                             - coalesce(h.held, 0)
        """,
        "lot {lot_id} of {amount} holds {remaining}, but its usages took {used},"
        " gifts back gave {returned} and holds earmark {held}",
    ),
    Check(
        "lot = its addition",
        # An admin's (or a plan's, a purchase's) addition has one lot like it; a transfer
        # in has one lot per expiration date it brought, and a reversal or refund a grace
        # lot of the share whose lot's date had passed: each no larger than the row.
        """
        SELECT x.account_id, x.id AS lot_id, x.amount, x.expires_on,
               t.seq, t.account_id AS addition_account, t.amount AS addition_amount,
               t.expires_on AS addition_expires_on
        FROM credits_creditlot x JOIN credits_credittransaction t ON t.id = x.allocation_id
        WHERE {accounts}
          AND (t.account_id <> x.account_id OR t.amount <= 0
               OR (t.kind IN ('transfer_in', 'reversal', 'refund') AND x.amount > t.amount)
               OR (t.kind NOT IN ('transfer_in', 'reversal', 'refund')
                   AND (t.amount <> x.amount OR t.expires_on IS DISTINCT FROM x.expires_on)))
        """,
        "lot {lot_id} ({amount}, expires {expires_on}) was added by transaction {seq} of"
        " account {addition_account} ({addition_amount}, expires {addition_expires_on})",
    ),
    Check(
        "addition has its lot",
        # Its lots (one, or a transfer's several, or a grace lot) and what it gave back to
        # lots a charge took from add up to it.
        """
        SELECT x.account_id, x.seq, x.amount,
               coalesce(l.added, 0) + coalesce(r.returned, 0) AS given
        FROM credits_credittransaction x
        LEFT JOIN (SELECT allocation_id, sum(amount) AS added FROM credits_creditlot
                   GROUP BY allocation_id) l ON l.allocation_id = x.id
        LEFT JOIN (SELECT transaction_id, sum(amount) AS returned
                   FROM credits_creditlotreturn WHERE grace_lot_id IS NULL
                   GROUP BY transaction_id) r ON r.transaction_id = x.id
        WHERE {accounts} AND x.amount > 0
          AND x.amount <> coalesce(l.added, 0) + coalesce(r.returned, 0)
        """,
        "transaction {seq} adds {amount} but has no lot of it: its lots and gifts back to"
        " lots hold {given}",
    ),
    Check(
        "deduction = its usages",
        """
        SELECT x.account_id, x.seq, x.amount, coalesce(u.used, 0) AS used
        FROM credits_credittransaction x
        LEFT JOIN (
            SELECT u.transaction_id, sum(u.amount) AS used,
                   min(l.account_id) AS first_account, max(l.account_id) AS last_account
            FROM credits_creditlotusage u JOIN credits_creditlot l ON l.id = u.lot_id
            GROUP BY u.transaction_id
        ) u ON u.transaction_id = x.id
        WHERE {accounts}
          AND ((x.amount < 0 AND (coalesce(u.used, 0) <> -x.amount
                                  OR u.first_account <> x.account_id
                                  OR u.last_account <> x.account_id))
               OR (x.amount > 0 AND u.used IS NOT NULL))
        """,
        "transaction {seq} moves {amount:+}, but its usages took {used}"
        " (or took from another account's lots)",
    ),
    Check(
        "balance = its lots",
        """
        SELECT x.id AS account_id, x.balance, coalesce(l.left_in_lots, 0) AS in_lots,
               coalesce(h.held, 0) AS held
        FROM credits_creditaccount x
        LEFT JOIN (SELECT account_id, sum(remaining) AS left_in_lots FROM credits_creditlot
                   WHERE remaining > 0 GROUP BY account_id) l ON l.account_id = x.id
        LEFT JOIN (SELECT hold.account_id, sum(hl.amount) AS held
                   FROM credits_credithold hold
                   JOIN credits_creditholdlot hl ON hl.hold_id = hold.id
                   WHERE hold.status = 'held' GROUP BY hold.account_id) h
               ON h.account_id = x.id
        WHERE {accounts} AND x.balance <> coalesce(l.left_in_lots, 0) + coalesce(h.held, 0)
        """,
        "the balance is {balance}, but its lots hold {in_lots} and its holds {held}",
        account_column="id",
    ),
    Check(
        "expired lots written off",
        """
        SELECT x.account_id, x.id AS lot_id, x.remaining, x.expires_on
        FROM credits_creditlot x
        WHERE {accounts} AND x.remaining > 0 AND x.expires_on < %(overdue_before)s
        """,
        "lot {lot_id} expired at the end of {expires_on} and still holds {remaining}:"
        " its expiration was not written (is the expiry sweep running?)",
    ),
]


KEPT_AND_COUNTED = (
    "SELECT *, count(*) OVER () AS total FROM found ORDER BY account_id, 2 LIMIT %(shown)s"
)


@dataclass(frozen=True)
class Mismatch:
    check: str
    account_id: int
    detail: str


@dataclass
class Report:
    mismatches: list[Mismatch] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)  # check: mismatches in all
    seconds: dict[str, float] = field(default_factory=dict)  # check: time taken

    @property
    def ok(self) -> bool:
        return not any(self.totals.values())


def run_checks(account_ids: list[int] | None = None) -> Report:
    """Every check over every account, or over `account_ids`: one query each."""
    now = timezone.now()
    params = {
        "accounts": account_ids,
        "shown": SHOWN_PER_CHECK,
        # The last day whose lots should be written off by now, in the space's zone.
        "overdue_before": timezone.localdate(now - EXPIRY_GRACE),
    }
    condition = "x.{column} = ANY(%(accounts)s)" if account_ids is not None else "true"
    report = Report()
    with connection.cursor() as cursor:
        for check in CHECKS:
            column = check.account_column
            started = time.perf_counter()
            # MATERIALIZED: planned for all its rows, not for the first few LIMIT asks for
            # (a nested loop over the usages that took ten minutes on the bench's data).
            query = check.sql.format(accounts=condition.format(column=column))
            # The checks' own text: every value is a parameter.
            sql = f"WITH found AS MATERIALIZED ({query}) {KEPT_AND_COUNTED}"  # noqa: S608
            cursor.execute(sql, params)
            names = [c.name for c in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            report.seconds[check.name] = time.perf_counter() - started
            report.totals[check.name] = rows[0]["total"] if rows else 0
            for row in rows:
                if "previous_balance" in row:
                    row["expected"] = row["previous_balance"] + row["amount"]
                report.mismatches.append(
                    Mismatch(check.name, row["account_id"], check.describe.format(**row))
                )
    return report


# --- Naming accounts on the command line ------------------------------------------------

CUSTOMER_ID = re.compile(r"^(user|company)_([0-9]{1,18})$")


def resolve_accounts(names: list[str]) -> list[int]:
    """The account ids of customers named as the API names them (`user_12`,
    `company_3`) or by a user's email address. Raises ValidationError naming every name
    that matches no customer."""
    wanted_users, wanted_companies, emails, unknown = {}, {}, {}, []
    for name in names:
        match = CUSTOMER_ID.match(name.strip())
        if match and match[1] == "user":
            wanted_users[int(match[2])] = name
        elif match:
            wanted_companies[int(match[2])] = name
        elif "@" in name:
            emails[name.strip().lower()] = name
        else:
            unknown.append(name)
    found = {}
    accounts = CreditAccount.objects.select_related("user")
    for account in accounts.filter(user_id__in=wanted_users):
        found[wanted_users[account.user_id]] = account.pk
    for account in accounts.filter(company_id__in=wanted_companies):
        found[wanted_companies[account.company_id]] = account.pk
    for account in accounts.filter(user__email__in=emails):
        found[emails[account.user.email.lower()]] = account.pk
    unknown += [name for name in names if name not in found and name not in unknown]
    if unknown:
        raise ValidationError(
            f"No customer {', '.join(repr(n) for n in unknown)}: name customers as user_<id>,"
            " company_<id> or a user's email address."
        )
    return sorted(set(found.values()))


def account_labels(account_ids) -> dict[int, str]:
    """'user_12 (maria@example.com)' or 'company_3 (Acme Ltd)' for each account id."""
    labels = {}
    for account in CreditAccount.objects.filter(pk__in=set(account_ids)).select_related(
        "user", "company"
    ):
        if account.user_id:
            labels[account.pk] = f"user_{account.user_id} ({account.user.email})"
        else:
            labels[account.pk] = f"company_{account.company_id} ({account.company.name})"
    return labels


def describe(report: Report) -> list[str]:
    """The report as lines of text: each mismatch shown, and how many each check found."""
    labels = account_labels(m.account_id for m in report.mismatches)
    lines = []
    for check in CHECKS:
        total = report.totals.get(check.name, 0)
        if not total:
            continue
        lines.append(f"{check.name}: {total} mismatch{'es' if total != 1 else ''}")
        shown = [m for m in report.mismatches if m.check == check.name]
        for mismatch in shown:
            label = labels.get(mismatch.account_id, "")
            lines.append(f"  account {mismatch.account_id} {label}: {mismatch.detail}")
        if total > len(shown):
            lines.append(f"  ... and {total - len(shown)} more")
    return lines


# --- Telling the admins -----------------------------------------------------------------


def admin_addresses() -> list[str]:
    """Who is told of a mismatch: settings.ADMINS when set (Django's list of the people
    told of server errors), otherwise every active superuser."""
    if settings.ADMINS:
        return [address for _, address in settings.ADMINS]
    return list(
        User.objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )


def check_and_report() -> Report:
    """Run every check; email the admins when one finds a mismatch (beat, nightly)."""
    report = run_checks()
    if not report.ok:
        logger.error("The credit ledger check found mismatches:\n%s", "\n".join(describe(report)))
        count = sum(report.totals.values())
        send_mail(
            subject=f"The credit ledger check found {count} mismatch{'es' if count != 1 else ''}",
            message="\n".join(
                [
                    "python manage.py check_ledger found what the ledger's rules do not allow:",
                    "",
                    *describe(report),
                    "",
                    "Run it again with the customers' ids (user_<id>, company_<id>) to check"
                    " them alone. docs/ledger.md, 'Checking the ledger', says what each"
                    " check means.",
                ]
            ),
            from_email=settings.SERVER_EMAIL,
            recipient_list=admin_addresses(),
        )
    return report
