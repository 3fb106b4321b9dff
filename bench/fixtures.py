"""Bulk-loaded ledgers for the benchmarks, and the check that they obey every invariant.

The loaders write SQL straight into the tables (the services would take hours for a
million rows) and then `check_invariants` proves the result is a ledger the services
could have written: an unbroken balance_after chain, lots whose remaining is their
amount minus their usages, usages that add up to their deduction, accounts that agree
with their newest transaction. The database's constraints and triggers apply throughout,
but for the long history: its million rows would cost minutes of the checks that run at
commit (credits/sql/append_only.sql), so it is loaded with triggers off (the bench connects
as a superuser) and checked by check_invariants instead.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from credits import ledger_check
from customers.models import User


def _users(prefix: str, count: int) -> list[int]:
    """`count` users with unusable passwords; returns their ids in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_user (password, is_superuser, email, first_name, last_name,
                                        is_staff, is_active, date_joined)
            SELECT '!', false, %s || g || '@bench.example', 'Bench', %s || g, false, true, now()
            FROM generate_series(1, %s) g
            RETURNING id
            """,
            [prefix, prefix, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def load_customers_with_lots(
    prefix: str,
    count: int,
    *,
    lots: int,
    amount: int,
    expires_on: list[dt.date | None],
    created_at: dt.datetime,
) -> list[int]:
    """`count` users, each with `lots` untouched lots of `amount` credits (their accounts,
    opened with them, follow their transactions).

    Lot number s (from 1) expires on expires_on[(s - 1) % len(expires_on)]. Returns the
    users' ids.
    """
    user_ids = _users(prefix, count)
    # One transaction: each addition has its lot at commit.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO credits_credittransaction
                (account_id, seq, kind, amount, balance_after, memo, created_at, expires_on)
            SELECT a.id, s, 'admin_allocation', %(amount)s, %(amount)s * s, 'Bench fixture',
                   %(created_at)s + s * interval '1 second',
                   (%(expiries)s::date[])[1 + (s - 1) %% cardinality(%(expiries)s::date[])]
            FROM credits_creditaccount a, generate_series(1, %(lots)s) s
            WHERE a.user_id = ANY(%(users)s)
            """,
            {
                "amount": amount,
                "created_at": created_at,
                "expiries": expires_on,
                "lots": lots,
                "users": user_ids,
            },
        )
        cursor.execute(
            """
            INSERT INTO credits_creditlot
                (account_id, allocation_id, amount, remaining, expires_on, created_at)
            SELECT t.account_id, t.id, t.amount, t.amount, t.expires_on, t.created_at
            FROM credits_credittransaction t JOIN credits_creditaccount a ON a.id = t.account_id
            WHERE a.user_id = ANY(%s)
            """,
            [user_ids],
        )
    return user_ids


def account_ids(user_ids: list[int]) -> list[int]:
    """The accounts of these users, in the users' order (opened with them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM credits_creditaccount WHERE user_id = ANY(%s) ORDER BY user_id",
            [user_ids],
        )
        return [row[0] for row in cursor.fetchall()]


def load_long_history(prefix: str, *, lots: int, transactions: int) -> int:
    """One user with `transactions` transactions and `lots` lots; returns the user's id.

    All but the last 10 lots are cycles of 100 transactions: an addition of 99 credits,
    then 99 deductions of 1 credit (every other cycle: 98 deductions and an expiration of
    the last credit, the lot having expired on the day it was added), one day apart, the
    first cycle 28 years ago. The last 10 lots (100 credits each, expiring in 30 to 39
    days) are followed by deductions of 0.50 that take from them in expiration order,
    leaving 6 open lots and 505 credits.
    """
    cycles = lots - 10
    tail = transactions - cycles * 100 - 10  # deductions of 0.50 after the last 10 lots
    if cycles < 0 or not 0 < tail <= 1990:
        raise ValueError("Use about 100 transactions per lot.")
    (user_id,) = _users(prefix, 1)
    zone = settings.TIME_ZONE
    today = timezone.localdate()
    first_day = today - dt.timedelta(days=cycles + 400)
    now = timezone.now()
    final_balance = Decimal(1000) - Decimal(tail) / 2
    params = {
        "user": user_id,
        "cycles": cycles,
        "tail": tail,
        "first_day": first_day,
        "zone": zone,
        "now": now,
        "today": today,
        "last_seq": transactions,
        "balance": final_balance,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # see the docstring
        cursor.execute(
            """
            UPDATE credits_creditaccount
            SET balance = %(balance)s, last_seq = %(last_seq)s,
                created_at = %(first_day)s::timestamptz
            WHERE user_id = %(user)s
            RETURNING id
            """,
            params,
        )
        params["account"] = cursor.fetchone()[0]
        # The cycles: j = 1 adds 99, j = 2..100 take 1 each (balance_after = 100 - j);
        # in even cycles j = 100 is the expiration at the end of the lot's day.
        cursor.execute(
            """
            INSERT INTO credits_credittransaction
                (account_id, seq, kind, amount, balance_after, memo, created_at, expires_on)
            SELECT %(account)s, k * 100 + j,
                   CASE WHEN j = 1 THEN 'admin_allocation'
                        WHEN j = 100 AND k %% 2 = 0 THEN 'expiration'
                        ELSE 'booking' END,
                   CASE WHEN j = 1 THEN 99 ELSE -1 END,
                   CASE WHEN j = 1 THEN 99 ELSE 100 - j END,
                   CASE WHEN j = 1 THEN 'Bench plan'
                        WHEN j = 100 AND k %% 2 = 0 THEN 'Credits that expired'
                        ELSE 'Bench booking' END,
                   CASE WHEN j = 100 AND k %% 2 = 0
                        THEN ((%(first_day)s::date + k + 1)::timestamp AT TIME ZONE %(zone)s)
                        ELSE ((%(first_day)s::date + k)::timestamp AT TIME ZONE %(zone)s)
                             + interval '8 hours' + j * interval '1 minute' END,
                   CASE WHEN j = 1 AND k %% 2 = 0 THEN %(first_day)s::date + k
                        WHEN j = 1 THEN %(first_day)s::date + k + 365 END
            FROM generate_series(0, %(cycles)s - 1) k, generate_series(1, 100) j
            """,
            params,
        )
        # The last 10 lots, then `tail` deductions of 0.50.
        cursor.execute(
            """
            INSERT INTO credits_credittransaction
                (account_id, seq, kind, amount, balance_after, memo, created_at, expires_on)
            SELECT %(account)s, %(cycles)s * 100 + i, 'admin_allocation', 100, 100 * i,
                   'Bench top-up', %(now)s - interval '1 day' + i * interval '1 second',
                   %(today)s::date + 29 + i
            FROM generate_series(1, 10) i
            UNION ALL
            SELECT %(account)s, %(cycles)s * 100 + 10 + m, 'booking', -0.5, 1000 - 0.5 * m,
                   'Bench booking', %(now)s - interval '1 day' + (10 + m) * interval '1 second',
                   NULL
            FROM generate_series(1, %(tail)s) m
            """,
            params,
        )
        # Lots, with what their usages below leave of them.
        cursor.execute(
            """
            INSERT INTO credits_creditlot
                (account_id, allocation_id, amount, remaining, expires_on, created_at)
            SELECT t.account_id, t.id, t.amount,
                   CASE WHEN t.seq <= %(cycles)s * 100 THEN 0
                        ELSE GREATEST(0, LEAST(100, 100 * (t.seq - %(cycles)s * 100)
                                                   - 0.5 * %(tail)s)) END,
                   t.expires_on, t.created_at
            FROM credits_credittransaction t
            WHERE t.account_id = %(account)s AND t.amount > 0
            """,
            params,
        )
        cursor.execute(
            """
            CREATE TEMP TABLE bench_lot_by_seq ON COMMIT DROP AS
            SELECT t.seq, l.id FROM credits_creditlot l
            JOIN credits_credittransaction t ON t.id = l.allocation_id
            WHERE l.account_id = %(account)s;
            CREATE UNIQUE INDEX ON bench_lot_by_seq (seq);
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO credits_creditlotusage (transaction_id, lot_id, amount)
            SELECT t.id, l.id, -t.amount
            FROM credits_credittransaction t
            JOIN bench_lot_by_seq l ON l.seq = CASE
                WHEN t.seq <= %(cycles)s * 100 THEN (t.seq - 1) / 100 * 100 + 1
                ELSE %(cycles)s * 100 + 1 + (t.seq - %(cycles)s * 100 - 11) / 200 END
            WHERE t.account_id = %(account)s AND t.amount < 0
            """,
            params,
        )
    return user_id


def check_invariants() -> dict[str, int]:
    """Every ledger invariant over the whole database: {rule: rows breaking it}, by the
    checks of `python manage.py check_ledger` (credits/ledger_check.py)."""
    return ledger_check.run_checks().totals


def assert_invariants(where: str) -> None:
    broken = {rule: count for rule, count in check_invariants().items() if count}
    if broken:
        raise AssertionError(f"Ledger invariants broken {where}: {broken}")


def staff_user() -> User:
    return User.objects.create_superuser("bench-admin@bench.example", "bench-password")
