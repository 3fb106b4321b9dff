"""Demo data for `make demo`: people, companies and a few months of credit history.

History is written through the ledger services with the clock set back, so every row
obeys the same rules as real data. Running it again changes nothing.
"""

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal
from unittest import mock

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from credits import services
from customers.models import Company, CompanyMembership, User

PASSWORD = "spacecredits"

PEOPLE = [
    # email, first, last, staff
    ("admin@example.com", "Ada", "Admin", True),
    ("viewer@example.com", "Vic", "Viewer", True),
    ("maria@example.com", "Maria", "Garcia", False),
    ("tom@example.com", "Tom", "Becker", False),
    ("lena@example.com", "Lena", "Novak", False),
    ("sam@example.com", "Sam", "Okafor", False),
    ("yuki@example.com", "Yuki", "Tanaka", False),
    ("omar@example.com", "Omar", "Haddad", False),
]


@contextmanager
def clock_at(moment):
    """Write history at `moment`: the ledger reads time only via timezone.now()."""
    with mock.patch.object(timezone, "now", return_value=moment):
        yield


class Command(BaseCommand):
    help = "Load demo users, companies and credit history (does nothing if already loaded)."

    @transaction.atomic
    def handle(self, *args, **options):
        if User.objects.filter(email="admin@example.com").exists():
            self.stdout.write("Demo data is already loaded.")
            return
        users = {}
        for email, first, last, staff in PEOPLE:
            users[email.split("@")[0]] = User.objects.create_user(
                email=email, password=PASSWORD, first_name=first, last_name=last, is_staff=staff
            )
        admin = users["admin"]
        admin.is_superuser = True
        admin.save(update_fields=["is_superuser"])
        # Front-desk staff: can look at everything, cannot change balances.
        front_desk, _ = Group.objects.get_or_create(name="Front desk (read only)")
        front_desk.permissions.set(
            Permission.objects.filter(
                content_type__app_label__in=["customers", "credits"], codename__startswith="view_"
            )
        )
        users["viewer"].groups.add(front_desk)

        acme = Company.objects.create(name="Acme Ltd", email="billing@acme.example")
        studio = Company.objects.create(
            name="Northwind Studio", email="hello@northwind.example", members_can_use_credits=True
        )
        for company, user, role in [
            (acme, users["maria"], "manager"),
            (acme, users["tom"], "member"),
            (acme, users["lena"], "member"),
            (studio, users["sam"], "manager"),
            (studio, users["yuki"], "member"),
            (studio, users["maria"], "member"),
        ]:
            CompanyMembership.objects.create(company=company, user=user, role=role)

        now = timezone.now()
        today = timezone.localdate(now)

        def days_ago(n, hour=10):
            return now - dt.timedelta(days=n) + dt.timedelta(hours=hour - now.hour)

        month_end = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(
            days=1
        )
        history = [
            # (days ago, customer, action, amount, expires_on, memo)
            (85, users["maria"], "add", 50, None, "Welcome bonus"),
            (80, acme, "add", 200, None, "Company plan top-up"),
            (70, users["maria"], "deduct", 8, None, "Meeting room, 2 hours"),
            (60, acme, "deduct", 35, None, "Board room for the quarterly review"),
            (45, users["tom"], "add", 20, today - dt.timedelta(days=20), "Trial credits"),
            (40, users["tom"], "deduct", 6, None, "Phone booth"),
            (30, studio, "add", 120, today + dt.timedelta(days=60), "Autumn package"),
            (25, users["maria"], "add", 12, month_end, "Referral reward"),
            (20, acme, "add", 40, today + dt.timedelta(days=5), "Event compensation"),
            (14, studio, "deduct", 18.5, None, "Podcast studio"),
            (10, users["lena"], "add", 30, today + dt.timedelta(days=90), "Day-pass bundle"),
            (7, users["maria"], "deduct", 4.5, None, "Printing"),
            (5, acme, "deduct", 22, None, "Meeting room, half day"),
            (3, users["sam"], "add", 15, None, "Community event host"),
            (2, users["yuki"], "add", 10, today + dt.timedelta(days=3), "Goodwill credit"),
            (1, users["omar"], "add", 25, None, "Welcome bonus"),
        ]
        for index, (ago, customer, action, amount, expires_on, memo) in enumerate(history):
            with clock_at(days_ago(ago)):
                services.adjust_balance(
                    customer,
                    kind=action,
                    amount=Decimal(str(amount)),
                    expires_on=expires_on,
                    memo=memo,
                    actor=admin,
                    idempotency_key=f"demo-{index}",
                )
        services.expire_due_credits()
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded. Password for all: {PASSWORD}"))
