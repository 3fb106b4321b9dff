"""A Hypothesis state machine drives the ledger (add, deduct, refused deduct, move the
clock, expire) and checks the ledger's invariants after every step against a plain
Python model of the lots; a second one grows the other verbs (hold, capture, release,
transfer, reverse, refund) and checks the invariants they must keep."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from credits import selectors, services
from credits.exceptions import InsufficientCredits
from credits.models import CreditAccount, CreditHold, CreditLot, CreditTransaction
from customers.models import CompanyMembership
from tests.credits.ledger import assert_chain_intact, assert_lots_consistent, snapshot
from tests.factories import CompanyFactory, UserFactory

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


# --- The other verbs ----------------------------------------------------------------------


class VerbsMachine(RuleBasedStateMachine):
    """Adds, deducts, holds, captures, releases, transfers, reverses, refunds, moves the
    clock and expires, for a member and a company, and checks after every step: balance
    = unexpired remaining + held; available = balance - held >= 0; each lot's remaining
    = amount - taken - held + given back; every chain intact; refunds and captures
    never above their charge or hold. A refusal writes nothing."""

    def __init__(self):
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        start = dt.datetime(2026, 3, 1, 9, 0)
        self.now = timezone.make_aware(start, timezone.get_default_timezone())
        self.clock = mock.patch.object(timezone, "now", lambda: self.now)
        self.clock.start()
        self.member = UserFactory()
        self.company = CompanyFactory()
        CompanyMembership.objects.create(company=self.company, user=self.member)
        self.customers = [self.member, self.company]

    def teardown(self):
        self.clock.stop()
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    def attempt(self, call):
        """Run a verb; a refusal must leave every row as it was."""
        before = snapshot()
        try:
            with transaction.atomic():
                return call()
        except ValidationError:
            assert snapshot() == before
            return None

    def today(self):
        return timezone.localdate(self.now)

    customer_index = st.integers(min_value=0, max_value=1)

    @rule(who=customer_index, amount=amounts, days=st.one_of(st.none(), st.integers(0, 20)))
    def add(self, who, amount, days):
        expires_on = None if days is None else self.today() + dt.timedelta(days=days)
        services.add_credits(self.customers[who], amount, expires_on=expires_on)

    @rule(who=customer_index, amount=amounts, booking=st.booleans())
    def charge(self, who, amount, booking):
        kind = "booking" if booking else "admin_charge"
        self.attempt(lambda: services.charge_credits(self.customers[who], amount, kind=kind))

    @rule(who=customer_index, amount=amounts, hours=st.integers(1, 24 * 10))
    def hold(self, who, amount, hours):
        ends = self.now + dt.timedelta(hours=hours)
        self.attempt(lambda: services.hold_credits(self.customers[who], amount, expires_at=ends))

    @rule(data=st.data(), release=st.booleans())
    def end_a_hold(self, data, release):
        holds = list(CreditHold.objects.order_by("pk"))
        if not holds:
            return
        hold = data.draw(st.sampled_from(holds))
        if release:
            self.attempt(lambda: services.release_hold(hold))
        else:
            amount = data.draw(st.one_of(st.none(), amounts))
            self.attempt(lambda: services.capture_hold(hold, amount))

    @rule(source=customer_index, amount=amounts)
    def transfer(self, source, amount):
        self.attempt(
            lambda: services.transfer_credits(
                self.customers[source], self.customers[1 - source], amount
            )
        )

    @rule(data=st.data())
    def reverse(self, data):
        rows = list(CreditTransaction.objects.order_by("pk"))
        if rows:
            row = data.draw(st.sampled_from(rows))
            self.attempt(lambda: services.reverse_transaction(row))

    @rule(data=st.data())
    def refund(self, data):
        bookings = list(CreditTransaction.objects.filter(kind="booking").order_by("pk"))
        if bookings:
            charge = data.draw(st.sampled_from(bookings))
            amount = data.draw(st.one_of(st.none(), amounts))
            self.attempt(lambda: services.refund_charge(charge, amount))

    @rule(hours=st.integers(min_value=1, max_value=24 * 6))
    def move_the_clock(self, hours):
        self.now += dt.timedelta(hours=hours)

    @rule()
    def expire(self):
        services.expire_due_credits()

    @invariant()
    def the_ledger_adds_up(self):
        today = self.today()
        for customer in self.customers:
            account = CreditAccount.objects.get(pk=customer.credit_account.pk)
            assert_chain_intact(account)
            assert_lots_consistent(account)  # remaining = amount - taken - held + given back
            lots = list(account.lots.all())
            # The ledger's balance: every lot's remaining (due ones not yet swept too) + held.
            assert account.balance == sum((lot.remaining for lot in lots), D("0")) + account.held
            unexpired = sum(
                (
                    lot.remaining
                    for lot in lots
                    if lot.expires_on is None or lot.expires_on >= today
                ),
                D("0"),
            )
            held_counted = D("0")
            for hold in account.holds.filter(status="held"):
                for share in hold.lots.select_related("lot"):
                    lot_usable = share.lot.expires_on is None or share.lot.expires_on >= today
                    if hold.expires_at > self.now or lot_usable:
                        held_counted += share.amount
            balance = selectors.get_balance(customer)
            held = selectors.get_held_balance(customer)
            available = selectors.get_available_balance(customer)
            assert balance == unexpired + held_counted
            assert available == balance - held >= 0

    @invariant()
    def refunds_and_captures_stay_within_their_charge_or_hold(self):
        for charge in CreditTransaction.objects.filter(kind="booking"):
            assert sum((r.amount for r in charge.refunds.all()), D("0")) <= -charge.amount
        for hold in CreditHold.objects.all():
            assert 0 <= hold.captured <= hold.amount


VerbsMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.django_db
def test_verbs_state_machine():
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(VerbsMachine, settings=VerbsMachine.TestCase.settings)
