"""Time the staff pages for a customer with 10 transactions and one with 1,000,000.

PostgreSQL only (the rows are written with one INSERT ... generate_series). Usage:

    DATABASE_URL=postgres://... .venv/bin/python bench/admin_pages.py [ROWS]

Writes its own users (bench-small@ / bench-big@example.com) once; run again to re-time.
"""

import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spacecredits.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from credits import services  # noqa: E402
from customers.models import User  # noqa: E402

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


def big_customer(rows: int) -> User:
    user, created = User.objects.get_or_create(
        email="bench-big@example.com", defaults={"first_name": "Big", "last_name": "History"}
    )
    if created:
        # One row every 8 seconds: the whole history falls inside the chart's 90 days.
        services.add_credits(user, 1, memo="First")
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO credits_credittransaction
                    (account_id, seq, kind, amount, balance_after, memo, created_at)
                SELECT a.id, g, 'admin_allocation', 1, g, 'Bulk ' || g,
                       now() - ((%(rows)s - g) * interval '8 seconds')
                FROM credits_creditaccount a, generate_series(2, %(rows)s) g
                WHERE a.user_id = %(user)s
                """,
                {"rows": rows, "user": user.pk},
            )
            cursor.execute(
                "UPDATE credits_creditaccount SET last_seq = %s, balance = %s WHERE user_id = %s",
                [rows, rows, user.pk],
            )
            cursor.execute("ANALYZE credits_credittransaction")
    return user


def small_customer() -> User:
    user, created = User.objects.get_or_create(
        email="bench-small@example.com", defaults={"first_name": "Small", "last_name": "History"}
    )
    if created:
        for index in range(10):
            services.add_credits(user, 1, memo=f"Row {index}")
    return user


def best_ms(client: Client, url: str, runs: int = 5) -> float:
    client.get(url)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            next(iter(response.streaming_content))
        best = min(best, time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)
    return best * 1000


def main():
    admin, _ = User.objects.get_or_create(
        email="bench-admin@example.com", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin)
    month_ago = (timezone.localdate(timezone.now()) - dt.timedelta(days=30)).isoformat()
    customers = {"10 rows": small_customer(), f"{ROWS:,} rows": big_customer(ROWS)}
    pages = {
        "profile": "/customers/users/{pk}/",
        "transactions": "/customers/users/{pk}/transactions/",
        "deep page": "/customers/users/{pk}/transactions/?before=5",
        "type filter": "/customers/users/{pk}/transactions/?kind=admin_charge",
        "date filter": "/customers/users/{pk}/transactions/?date_from={day}&date_to={day}",
        "CSV (first chunk)": "/customers/users/{pk}/transactions/export.csv",
    }
    print(f"{'page':<20}" + "".join(f"{name:>16}" for name in customers))
    for page, url in pages.items():
        times = [best_ms(client, url.format(pk=c.pk, day=month_ago)) for c in customers.values()]
        print(f"{page:<20}" + "".join(f"{ms:>13.1f} ms" for ms in times))
    print(f"{'customers list':<20}{best_ms(client, '/customers/'):>13.1f} ms")


if __name__ == "__main__":
    main()
