"""A Hypothesis state machine drives the ledger (add, deduct, refused deduct, move the
clock, expire) and checks the ledger's invariants after every step against a plain
Python model of the lots."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from credits import selectors, services
from credits.exceptions import InsufficientCredits
from credits.models import CreditAccount, CreditLot
from tests.credits.ledger import assert_chain_intact, assert_lots_consistent, snapshot
from tests.factories import UserFactory

D = Decimal
amounts = st.decimals(min_value=D("0.01"), max_value=D("300"), places=2)


def deduction_order(lot):
    return (lot["expires_on"] is None, lot["expires_on"] or dt.date.max, lot["order"])


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each run writes inside a savepoint that teardown rolls back: runs don't meet.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        start = dt.datetime(2026, 3, 1, 9, 0)
        self.now = timezone.make_aware(start, timezone.get_default_timezone())
        self.clock = mock.patch.object(timezone, "now", lambda: self.now)
        self.clock.start()
        self.member = UserFactory()
        self.lots = {}  # lot id -> {"remaining", "expires_on", "order"}
        self.last_deduction = None

    def teardown(self):
        self.clock.stop()
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # --- the model ---

    def today(self):
        return timezone.localdate(self.now)

    def usable(self):
        return [
            lot
            for lot in self.lots.values()
            if lot["remaining"] > 0
            and (lot["expires_on"] is None or lot["expires_on"] >= self.today())
        ]

    def model_balance(self):
        return sum((lot["remaining"] for lot in self.usable()), D("0"))

    def write_off_due(self):
        for lot in self.lots.values():
            if lot["expires_on"] is not None and lot["expires_on"] < self.today():
                lot["remaining"] = D("0")

    # --- the rules ---

    @rule(amount=amounts, days=st.one_of(st.none(), st.integers(min_value=0, max_value=20)))
    def add(self, amount, days):
        expires_on = None if days is None else self.today() + dt.timedelta(days=days)
        added = services.add_credits(self.member, amount, expires_on=expires_on)
        self.write_off_due()
        self.lots[added.lot.pk] = {
            "remaining": amount,
            "expires_on": expires_on,
            "order": len(self.lots),
        }
        self.last_deduction = None

    @precondition(lambda self: self.model_balance() > 0)
    @rule(data=st.data())
    def deduct(self, data):
        balance = self.model_balance()
        amount = data.draw(st.decimals(min_value=D("0.01"), max_value=balance, places=2))
        charged = services.deduct_credits(self.member, amount)
        self.write_off_due()
        needed = amount
        for lot in sorted(self.usable(), key=deduction_order):
            take = min(lot["remaining"], needed)
            lot["remaining"] -= take
            needed -= take
        assert needed == 0
        assert charged.balance_after == balance - amount
        self.last_deduction = charged

    @rule(extra=amounts)
    def refused_deduct(self, extra):
        balance = self.model_balance()
        before = snapshot()
        with pytest.raises(InsufficientCredits) as refused:
            services.deduct_credits(self.member, balance + extra)
        assert refused.value.available == balance
        assert snapshot() == before

    @rule(hours=st.integers(min_value=1, max_value=24 * 6))
    def move_the_clock(self, hours):
        self.now += dt.timedelta(hours=hours)
        self.last_deduction = None

    @rule()
    def expire(self):
        due = sum(
            1
            for lot in self.lots.values()
            if lot["remaining"] > 0 and lot["expires_on"] and lot["expires_on"] < self.today()
        )
        assert services.expire_due_credits() == due
        self.write_off_due()
        self.last_deduction = None

    # --- the invariants ---

    @invariant()
    def balance_is_the_sum_of_unexpired_remaining(self):
        db_lots = CreditLot.objects.filter(account__user=self.member)
        unexpired = sum(
            (
                lot.remaining
                for lot in db_lots
                if lot.expires_on is None or lot.expires_on >= self.today()
            ),
            D("0"),
        )
        due_not_swept = sum(
            (lot.remaining for lot in db_lots if lot.expires_on and lot.expires_on < self.today()),
            D("0"),
        )
        balance = selectors.get_balance(self.member)
        assert balance == unexpired == self.model_balance()
        newest = selectors.get_transactions(self.member).first()
        newest_balance_after = newest.balance_after if newest else D("0")
        # Equal to the newest balance_after once due expirations are written.
        assert newest_balance_after - due_not_swept == balance

    @invariant()
    def every_lot_holds_what_the_model_says(self):
        for lot in CreditLot.objects.filter(account__user=self.member):
            assert lot.remaining >= 0
            assert lot.remaining == self.lots[lot.pk]["remaining"], lot.pk

    @invariant()
    def chain_and_usages_are_intact(self):
        account = CreditAccount.objects.filter(user=self.member).first()
        if account:
            assert_chain_intact(account)
            assert_lots_consistent(account)

    @invariant()
    def no_deduction_skipped_an_earlier_expiring_lot(self):
        if self.last_deduction is None:
            return
        taken = {usage.lot_id for usage in self.last_deduction.usages.all()}
        for lot_id in taken:
            later_than = deduction_order(self.lots[lot_id])
            for other in self.usable():
                if deduction_order(other) < later_than:
                    pytest.fail(f"lot {lot_id} was used while an earlier lot still had credits")

    @invariant()
    def breakdown_matches_the_model(self):
        expected = {}
        for lot in self.usable():
            expected[lot["expires_on"]] = expected.get(lot["expires_on"], D("0")) + lot["remaining"]
        breakdown = selectors.get_expiration_breakdown(self.member)
        assert dict(breakdown) == expected
        dates = [d for d, _ in breakdown]
        assert dates == sorted(dates, key=lambda d: (d is None, d or dt.date.max))


LedgerMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.django_db
def test_ledger_state_machine():
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(LedgerMachine, settings=LedgerMachine.TestCase.settings)
