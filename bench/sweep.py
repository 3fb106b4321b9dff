"""Expiry sweep: expire_due_credits() over due lots of many customers, against one plain
SQL UPDATE of the same rows (rolled back, so the sweep then finds them all due)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from credits.models import CreditLot
from credits.services import expire_due_credits


@dataclass
class SweepResult:
    lots: int
    customers: int
    sweep_s: float
    update_s: float

    @property
    def ratio(self) -> float:
        return self.sweep_s / self.update_s


def _vacuum():
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE credits_creditlot")


def plain_update_seconds() -> tuple[float, int]:
    today = timezone.localdate()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # The baseline is the bare UPDATE, without the ledger's triggers (which refuse
            # a plain UPDATE of remaining: the bench connects as a superuser).
            cursor.execute("SET LOCAL session_replication_role = replica")
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE credits_creditlot SET remaining = 0"
                " WHERE remaining > 0 AND expires_on < %s",
                [today],
            )
            rows = cursor.rowcount
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed, rows


def run() -> SweepResult:
    due = CreditLot.objects.filter(remaining__gt=0, expires_on__lt=timezone.localdate())
    customers = due.values("account_id").distinct().count()
    _vacuum()
    update_s, rows = plain_update_seconds()
    _vacuum()
    started = time.perf_counter()
    expired = expire_due_credits()
    sweep_s = time.perf_counter() - started
    if expired != rows or due.exists():
        raise AssertionError(f"The sweep expired {expired} lots; the update touched {rows}.")
    return SweepResult(lots=expired, customers=customers, sweep_s=sweep_s, update_s=update_s)
