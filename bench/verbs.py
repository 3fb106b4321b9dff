"""What a hold then its capture costs against one adjustment: the same customers, one
client, calls taking turns (a deduction; a hold and its capture), medians of each."""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from dataclasses import dataclass

from . import config


@dataclass
class HoldCost:
    pairs: int
    adjustment_ms: float  # median of deduct_credits
    hold_capture_ms: float  # median of hold_credits + capture_hold

    @property
    def ratio(self) -> float:
        return self.hold_capture_ms / self.adjustment_ms


def run(user_ids: list[int]) -> HoldCost:
    from django.utils import timezone

    from credits.services import capture_hold, deduct_credits, hold_credits
    from customers.models import User

    rng = random.Random(7)
    customers = list(User.objects.filter(pk__in=user_ids).select_related("credit_account"))
    adjustments, holds = [], []
    for _ in range(config.HOLD_PAIRS):
        customer = rng.choice(customers)
        started = time.perf_counter()
        deduct_credits(customer, 2)
        adjustments.append(time.perf_counter() - started)
        customer = rng.choice(customers)
        started = time.perf_counter()
        hold = hold_credits(customer, 2, expires_at=timezone.now() + dt.timedelta(hours=1))
        capture_hold(hold)
        holds.append(time.perf_counter() - started)
    return HoldCost(
        config.HOLD_PAIRS,
        statistics.median(adjustments) * 1000,
        statistics.median(holds) * 1000,
    )
