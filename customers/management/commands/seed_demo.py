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
from customers import services as customer_services
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
        self._verbs(users, acme, studio, days_ago, now)
        services.expire_due_credits()
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded. Password for all: {PASSWORD}"))

    def _verbs(self, users, acme, studio, days_ago, now):
        """The ledger's other verbs, so each screen has one to show: a reversal, a
        refund, a captured hold and an open one, a transfer, a member's monthly limit
        with a charge on their behalf, and a finished grant to many. Each is dated after
        the customer's last row above, so every history stays in time order."""
        admin, maria, tom, lena = (users[n] for n in ("admin", "maria", "tom", "lena"))
        with clock_at(days_ago(18)):
            mistake = services.add_credits(
                tom, 100, memo="Day passes", actor=admin, idempotency_key="demo-typo"
            )
        with clock_at(days_ago(18, hour=11)):
            services.reverse_transaction(
                mistake, memo="Typed 100 instead of 10", actor=admin, idempotency_key="demo-undo"
            )
            services.add_credits(
                tom, 10, memo="Day passes", actor=admin, idempotency_key="demo-typo-fixed"
            )
        with clock_at(days_ago(9)):
            booking = services.charge_credits(
                lena, 6, kind="booking", memo="Meeting room, 14:00–16:00", idempotency_key="demo-b1"
            )
        with clock_at(days_ago(8)):
            services.refund_charge(
                booking, 3, memo="Cancelled the second hour", idempotency_key="demo-refund"
            )
        with clock_at(days_ago(6)):
            podcast = services.hold_credits(
                studio,
                10,
                expires_at=days_ago(6, hour=13),
                memo="Podcast studio, 10:00–12:00",
                idempotency_key="demo-hold-podcast",
            )
        with clock_at(days_ago(6, hour=12)):
            services.capture_hold(podcast, 8, idempotency_key="demo-capture-podcast")
        with clock_at(days_ago(4)):
            services.transfer_credits(
                acme, tom, 10, memo="Client workshop budget", actor=maria, idempotency_key="demo-t1"
            )
        with clock_at(days_ago(2, hour=15)):
            batch = services.grant_to_many(
                [m.user for m in studio.memberships.select_related("user").order_by("pk")],
                5,
                memo="Thanks for hosting the community day",
                actor=admin,
                idempotency_key="demo-batch",
            )
            services.run_credit_batch(batch.pk)  # finished (its delivery then finds it so)
        toms = acme.memberships.get(user=tom)
        customer_services.set_monthly_credit_limit(toms, Decimal("40"), by=maria)
        # Earlier this calendar month (the limit's), whatever day the demo is loaded.
        month_start = timezone.make_aware(
            dt.datetime.combine(timezone.localdate(now).replace(day=1), dt.time())
        )
        with clock_at(now - min(dt.timedelta(hours=2), (now - month_start) / 2)):
            services.charge_credits(
                acme,
                8,
                kind="booking",
                memo="Phone booth, 1 hour",
                on_behalf_of=tom,
                idempotency_key="demo-b2",
            )
        with clock_at(now - dt.timedelta(hours=1)):
            services.hold_credits(
                maria,
                6,
                expires_at=now + dt.timedelta(days=3),
                memo="Meeting room, Friday 10:00–12:00",
                idempotency_key="demo-hold-maria",
            )
