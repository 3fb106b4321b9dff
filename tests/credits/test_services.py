import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from credits import selectors, services
from credits.exceptions import IdempotencyConflict, InsufficientCredits
from credits.models import CreditAccount, CreditLot, CreditTransaction
from customers.models import Company, User
from tests.credits.ledger import (
    assert_chain_intact,
    assert_lots_consistent,
    breakdown_as_text,
    snapshot,
    taken_from,
)
from tests.factories import CompanyFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

D = Decimal


def account_of(customer):
    return CreditAccount.objects.get(pk=customer.credit_account.pk)


# --- Adding -------------------------------------------------------------------------------


def test_add_records_a_lot_and_a_transaction(clock):
    member = UserFactory()
    admin = StaffFactory()
    added = services.add_credits(
        member, D("25"), memo="Welcome bonus", actor=admin, idempotency_key="k1"
    )
    assert added.kind == "admin_allocation"
    assert added.amount == D("25.00")
    assert added.balance_after == D("25.00")
    assert added.memo == "Welcome bonus"
    assert added.actor == admin
    assert added.expires_on is None
    assert added.created_at == clock.now
    assert added.lot.remaining == D("25.00")
    assert selectors.get_balance(member) == D("25.00")
    assert breakdown_as_text(member) == [("never", "25.00")]


def test_company_has_its_own_balance(clock):
    company = CompanyFactory()
    manager = UserFactory()
    services.add_credits(company, 100)
    services.add_credits(manager, 7)
    services.deduct_credits(company, 40)
    assert selectors.get_balance(company) == D("60.00")
    assert selectors.get_balance(manager) == D("7.00")
    assert [t.amount for t in selectors.get_transactions(company)] == [D("-40"), D("100")]


def test_new_customer_has_zero_balance_and_no_history():
    member = UserFactory()
    assert selectors.get_balance(member) == D("0")
    assert selectors.get_expiration_breakdown(member) == []
    assert list(selectors.get_transactions(member)) == []


# --- Deduction order: worked examples ---------------------------------------------------


def test_deduction_order_worked_example(clock):
    """Lots (added in this order): A 10 never, B 5 exp 30 Jun, C 8 exp 15 Jun,
    D 4 exp 30 Jun (same date as B, newer), E 6 never (newer than A)."""
    member = UserFactory()
    a = services.add_credits(member, 10).lot
    clock.advance(minutes=1)
    b = services.add_credits(member, 5, expires_on=dt.date(2026, 6, 30)).lot
    clock.advance(minutes=1)
    c = services.add_credits(member, 8, expires_on=dt.date(2026, 6, 15)).lot
    clock.advance(minutes=1)
    d = services.add_credits(member, 4, expires_on=dt.date(2026, 6, 30)).lot
    clock.advance(minutes=1)
    e = services.add_credits(member, 6).lot
    assert selectors.get_balance(member) == D("33")
    assert breakdown_as_text(member) == [
        ("2026-06-15", "8.00"),
        ("2026-06-30", "9.00"),
        ("never", "16.00"),
    ]

    # 3 from C, the earliest expiry.
    step1 = services.deduct_credits(member, 3)
    assert taken_from(step1) == {c.pk: D("3")}
    assert step1.balance_after == D("30")
    assert breakdown_as_text(member) == [
        ("2026-06-15", "5.00"),
        ("2026-06-30", "9.00"),
        ("never", "16.00"),
    ]

    # 7: the last 5 of C, then 2 from B (older of the two lots expiring 30 Jun).
    step2 = services.deduct_credits(member, 7)
    assert taken_from(step2) == {c.pk: D("5"), b.pk: D("2")}
    assert breakdown_as_text(member) == [("2026-06-30", "7.00"), ("never", "16.00")]

    # 9.5: B's last 3, all 4 of D, then 2.5 from A (older never-expiring lot).
    step3 = services.deduct_credits(member, D("9.5"))
    assert taken_from(step3) == {b.pk: D("3"), d.pk: D("4"), a.pk: D("2.5")}
    assert breakdown_as_text(member) == [("never", "13.50")]

    # 10: A's last 7.5, then 2.5 from E.
    step4 = services.deduct_credits(member, 10)
    assert taken_from(step4) == {a.pk: D("7.5"), e.pk: D("2.5")}
    assert breakdown_as_text(member) == [("never", "3.50")]
    assert selectors.get_balance(member) == D("3.50")

    remaining = {lot.pk: lot.remaining for lot in CreditLot.objects.all()}
    assert remaining == {a.pk: 0, b.pk: 0, c.pk: 0, d.pk: 0, e.pk: D("3.5")}
    assert_chain_intact(account_of(member))
    assert_lots_consistent(account_of(member))


def test_same_expiry_takes_oldest_lot_first(clock):
    member = UserFactory()
    first = services.add_credits(member, 2, expires_on=dt.date(2026, 7, 1)).lot
    clock.advance(seconds=1)
    second = services.add_credits(member, 2, expires_on=dt.date(2026, 7, 1)).lot
    taken = services.deduct_credits(member, 3)
    assert taken_from(taken) == {first.pk: D("2"), second.pk: D("1")}


def test_never_expiring_lots_come_last_even_when_older(clock):
    member = UserFactory()
    forever = services.add_credits(member, 5).lot
    clock.advance(days=1)
    later = services.add_credits(member, 5, expires_on=dt.date(2027, 1, 1)).lot
    taken = services.deduct_credits(member, 6)
    assert taken_from(taken) == {later.pk: D("5"), forever.pk: D("1")}


def test_deduct_exactly_the_balance_leaves_zero(clock):
    member = UserFactory()
    services.add_credits(member, D("12.34"))
    services.deduct_credits(member, D("12.34"))
    assert selectors.get_balance(member) == D("0")
    assert selectors.get_expiration_breakdown(member) == []


# --- Refusals change nothing -------------------------------------------------------------


def test_deduct_more_than_balance_is_refused_and_says_what_is_available(clock):
    member = UserFactory()
    services.add_credits(member, 10)
    services.add_credits(member, D("2.5"), expires_on=dt.date(2026, 6, 3))
    before = snapshot()
    with pytest.raises(InsufficientCredits) as refused:
        services.deduct_credits(member, D("12.51"))
    assert refused.value.available == D("12.50")
    assert refused.value.messages == ["Only 12.50 credits are available."]  # as shown elsewhere
    assert snapshot() == before


def test_refused_deduction_on_customer_without_account_writes_nothing():
    member = UserFactory()
    before = snapshot()
    with pytest.raises(InsufficientCredits) as refused:
        services.deduct_credits(member, 1)
    assert refused.value.available == 0
    assert snapshot() == before


BAD_AMOUNTS = [
    0,
    -1,
    D("-0.01"),
    D("0.001"),
    D("1.005"),
    "1.001",
    D("1000000.01"),
    1_000_001,
    D("NaN"),
    D("sNaN"),
    D("Infinity"),
    float("inf"),
    float("nan"),
    "abc",
    "",
    None,
    True,
    [5],
]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
@pytest.mark.parametrize("action", ["add", "deduct"])
def test_bad_amounts_are_refused_and_nothing_changes(clock, amount, action):
    member = UserFactory()
    services.add_credits(member, 50)
    before = snapshot()
    with pytest.raises(ValidationError) as refused:
        if action == "add":
            services.add_credits(member, amount)
        else:
            services.deduct_credits(member, amount)
    assert "amount" in refused.value.message_dict
    assert snapshot() == before


@pytest.mark.parametrize("amount", [D("0.01"), D("1000000"), "7.5", 3, D("2.50"), 1.25])
def test_good_amounts_are_accepted(clock, amount):
    member = UserFactory()
    added = services.add_credits(member, amount)
    assert added.amount == D(str(amount)).quantize(D("0.01"))


@pytest.mark.parametrize(
    "expires_on",
    [
        dt.date(2026, 5, 31),  # yesterday (the clock is at 1 Jun 2026)
        dt.date(2020, 1, 1),
        dt.datetime(2026, 7, 1, 12, 0),
        "2026-07-01",
        20260701,
    ],
    ids=repr,
)
def test_bad_expirations_are_refused_and_nothing_changes(clock, expires_on):
    member = UserFactory()
    before = snapshot()
    with pytest.raises(ValidationError) as refused:
        services.add_credits(member, 5, expires_on=expires_on)
    assert "expires_on" in refused.value.message_dict
    assert snapshot() == before


def test_expiration_today_is_accepted_in_the_space_time_zone(clock, settings):
    # 00:30 on 2 Jun in Auckland is still 1 Jun in UTC: "today" is the space's date.
    settings.TIME_ZONE = "Pacific/Auckland"
    clock.set_local(2026, 6, 2, 0, 30)
    member = UserFactory()
    services.add_credits(member, 5, expires_on=dt.date(2026, 6, 2))
    with pytest.raises(ValidationError):
        services.add_credits(member, 5, expires_on=dt.date(2026, 6, 1))
    assert selectors.get_balance(member) == D("5")


@pytest.mark.parametrize(
    "memo, action", [("x" * 501, "add"), ("x" * 501, "deduct"), (42, "add"), ("a\x00b", "add")]
)
def test_bad_memos_are_refused_and_nothing_changes(clock, memo, action):
    member = UserFactory()
    services.add_credits(member, 50)
    before = snapshot()
    with pytest.raises(ValidationError) as refused:
        if action == "add":
            services.add_credits(member, 1, memo=memo)
        else:
            services.deduct_credits(member, 1, memo=memo)
    assert "memo" in refused.value.message_dict
    assert snapshot() == before


def test_memo_of_500_characters_is_kept_whole(clock):
    member = UserFactory()
    added = services.add_credits(member, 1, memo="é" * 500)
    assert CreditTransaction.objects.get(pk=added.pk).memo == "é" * 500


@pytest.mark.parametrize("key", ["", "   ", "k" * 101, 123])
def test_bad_idempotency_keys_are_refused(clock, key):
    member = UserFactory()
    before = snapshot()
    with pytest.raises(ValidationError):
        services.add_credits(member, 1, idempotency_key=key)
    assert snapshot() == before


def test_bad_customers_and_actors_are_refused(clock):
    member = UserFactory()
    before = snapshot()
    with pytest.raises(ValidationError):
        services.add_credits(User(email="unsaved@example.com"), 1)
    with pytest.raises(ValidationError):
        services.add_credits(Company(name="Unsaved"), 1)
    with pytest.raises(ValidationError):
        services.add_credits("someone", 1)
    with pytest.raises(ValidationError):
        services.add_credits(member, 1, actor="admin")
    assert snapshot() == before


def test_adjust_balance_refuses_an_expiration_on_a_deduction(clock):
    member = UserFactory()
    services.add_credits(member, 5)
    before = snapshot()
    with pytest.raises(ValidationError) as refused:
        services.adjust_balance(member, kind="deduct", amount=1, expires_on=dt.date(2026, 7, 1))
    assert "expires_on" in refused.value.message_dict
    with pytest.raises(ValidationError):
        services.adjust_balance(member, kind="gift", amount=1)
    assert snapshot() == before


# --- Idempotency ---------------------------------------------------------------------------


def test_same_key_twice_records_one_transaction_and_returns_the_first(clock):
    member = UserFactory()
    first = services.add_credits(member, 25, memo="Welcome", idempotency_key="form-1")
    clock.advance(seconds=2)
    again = services.add_credits(member, 25, memo="Welcome", idempotency_key="form-1")
    assert again.pk == first.pk
    assert CreditTransaction.objects.count() == 1
    assert selectors.get_balance(member) == D("25")


def test_same_key_for_deductions_charges_once(clock):
    member = UserFactory()
    services.add_credits(member, 10)
    first = services.deduct_credits(member, 4, idempotency_key="pay-1")
    again = services.deduct_credits(member, 4, idempotency_key="pay-1")
    assert again.pk == first.pk
    assert selectors.get_balance(member) == D("6")


def test_replay_of_a_deduction_succeeds_even_when_balance_is_now_too_low(clock):
    member = UserFactory()
    services.add_credits(member, 4)
    first = services.deduct_credits(member, 4, idempotency_key="pay-1")
    assert services.deduct_credits(member, 4, idempotency_key="pay-1").pk == first.pk


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 26},
        {"memo": "Other"},
        {"expires_on": dt.date(2026, 12, 31)},
    ],
)
def test_same_key_with_different_content_is_refused(clock, change):
    member = UserFactory()
    services.add_credits(member, 25, memo="Welcome", idempotency_key="form-1")
    before = snapshot()
    content = {"amount": 25, "memo": "Welcome", **change}
    with pytest.raises(IdempotencyConflict):
        services.add_credits(member, idempotency_key="form-1", **content)
    assert snapshot() == before


def test_same_key_for_a_deduction_after_an_addition_is_refused(clock):
    member = UserFactory()
    services.add_credits(member, 25, idempotency_key="form-1")
    with pytest.raises(IdempotencyConflict):
        services.deduct_credits(member, 25, idempotency_key="form-1")
    assert selectors.get_balance(member) == D("25")


def test_keys_are_per_customer(clock):
    one, two = UserFactory(), UserFactory()
    services.add_credits(one, 5, idempotency_key="same")
    services.add_credits(two, 5, idempotency_key="same")
    assert selectors.get_balance(one) == selectors.get_balance(two) == D("5")


# --- Expiry --------------------------------------------------------------------------------


def test_credits_are_usable_through_the_end_of_their_expiration_day(clock):
    member = UserFactory()
    services.add_credits(member, 8, expires_on=dt.date(2026, 6, 10))
    services.add_credits(member, 2)
    clock.set_local(2026, 6, 10, 23, 59, 59)
    assert selectors.get_balance(member) == D("10")
    clock.set_local(2026, 6, 11, 0, 0, 0)
    # Before any sweep, the balance and the breakdown already leave the lot out.
    assert selectors.get_balance(member) == D("2")
    assert breakdown_as_text(member) == [("never", "2.00")]
    with pytest.raises(InsufficientCredits) as refused:
        services.deduct_credits(member, 3)
    assert refused.value.available == D("2")


def test_sweep_writes_one_expiration_dated_at_the_moment_of_expiry(clock):
    member = UserFactory()
    first = services.add_credits(member, 8, expires_on=dt.date(2026, 6, 10)).lot
    second = services.add_credits(member, 3, expires_on=dt.date(2026, 6, 10)).lot
    services.add_credits(member, 2)
    services.deduct_credits(member, 5)
    clock.set_local(2026, 6, 12, 9)
    assert services.expire_due_credits() == 2
    expired = selectors.get_transactions(member).first()
    assert expired.kind == "expiration"
    assert expired.amount == D("-6")  # 8 + 3 - 5 taken by the deduction
    assert expired.balance_after == D("2")
    assert expired.actor is None
    midnight = clock.set_local(2026, 6, 11, 0, 0, 0)
    assert expired.created_at == midnight
    assert taken_from(expired) == {first.pk: D("3"), second.pk: D("3")}
    assert_chain_intact(account_of(member))
    assert_lots_consistent(account_of(member))


def test_sweep_does_not_repeat_and_leaves_live_lots_alone(clock):
    member = UserFactory()
    services.add_credits(member, 4, expires_on=dt.date(2026, 6, 1))
    services.add_credits(member, 6, expires_on=dt.date(2026, 6, 30))
    clock.set_local(2026, 6, 2, 8)
    assert services.expire_due_credits() == 1
    before = snapshot()
    assert services.expire_due_credits() == 0
    assert snapshot() == before
    assert selectors.get_balance(member) == D("6")


def test_each_expiration_date_gets_its_own_transaction_in_order(clock):
    member = UserFactory()
    services.add_credits(member, 1, expires_on=dt.date(2026, 6, 5))
    services.add_credits(member, 2, expires_on=dt.date(2026, 6, 3))
    clock.set_local(2026, 6, 20)
    services.expire_due_credits()
    rows = list(selectors.get_transactions(member)[:2])
    assert [(r.amount, r.created_at.date()) for r in reversed(rows)] == [
        (D("-2"), dt.date(2026, 6, 3)),  # 4 Jun 00:00 London is 3 Jun 23:00 UTC
        (D("-1"), dt.date(2026, 6, 5)),
    ]
    assert_chain_intact(account_of(member))


def test_an_adjustment_first_writes_its_customers_due_expirations(clock):
    member = UserFactory()
    services.add_credits(member, 5, expires_on=dt.date(2026, 6, 1))
    services.add_credits(member, 5)
    clock.set_local(2026, 6, 3)
    added = services.add_credits(member, 1)
    kinds = [t.kind for t in selectors.get_transactions(member)]
    assert kinds == ["admin_allocation", "expiration", "admin_allocation", "admin_allocation"]
    assert added.balance_after == D("6")
    assert services.expire_due_credits() == 0
    assert_chain_intact(account_of(member))


def test_expire_credits_command(clock, capsys):
    member = UserFactory()
    services.add_credits(member, 5, expires_on=dt.date(2026, 6, 1))
    clock.set_local(2026, 6, 5)
    call_command("expire_credits")
    assert "Expired 1 lot." in capsys.readouterr().out
    assert selectors.get_balance(member) == D("0")
    assert CreditLot.objects.get().remaining == 0


def test_expiry_beat_schedule_runs_the_sweep_task(settings):
    from credits import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["expire-due-credits"]
    assert entry["task"] == tasks.expire_due_credits.name
    assert entry["schedule"].total_seconds() <= 15 * 60


# --- Reserved kinds ------------------------------------------------------------------------


def test_reserved_kinds_fit_the_model(clock):
    member = UserFactory()
    services.grant_credits(member, 30, kind="subscription_allocation")
    services.grant_credits(member, 10, kind="purchase_allocation", expires_on=dt.date(2026, 9, 1))
    services.charge_credits(member, 12, kind="booking", memo="Room A, 2h")
    services.grant_credits(member, 6, kind="refund", memo="Cancelled booking")
    assert selectors.get_balance(member) == D("34")
    with pytest.raises(ValidationError):
        services.grant_credits(member, 1, kind="booking")
    with pytest.raises(ValidationError):
        services.charge_credits(member, 1, kind="expiration")
    assert_chain_intact(account_of(member))


def test_an_expiration_date_is_judged_at_the_moment_the_adjustment_is_recorded(clock):
    """An adjustment is dated when it was asked for, but never before the account's newest
    transaction (another host's clock may lag): its expiration date is judged at that
    moment, under the account lock. Here a request read 23:59:59 on 10 June on a lagging
    host lands after a transaction of 00:00:01 on 11 June, so 10 June is past."""
    member = UserFactory()
    clock.set_local(2026, 6, 11, 0, 0, 1)
    services.add_credits(member, 1)
    clock.set_local(2026, 6, 10, 23, 59, 59)
    before = snapshot()
    with pytest.raises(ValidationError) as refused:
        services.add_credits(member, 5, expires_on=dt.date(2026, 6, 10))
    assert "expires_on" in refused.value.message_dict
    assert snapshot() == before


def test_a_resubmitted_form_returns_its_transaction_even_after_its_date_passed(clock):
    member = UserFactory()
    first = services.add_credits(member, 5, expires_on=dt.date(2026, 6, 1), idempotency_key="f")
    clock.set_local(2026, 6, 3)
    again = services.add_credits(member, 5, expires_on=dt.date(2026, 6, 1), idempotency_key="f")
    assert again.pk == first.pk


def test_history_stays_in_time_order_when_the_clock_goes_back(clock):
    """Several hosts' clocks differ a little: a later transaction is never dated earlier."""
    member = UserFactory()
    first = services.add_credits(member, 5, expires_on=dt.date(2026, 6, 1))
    clock.advance(minutes=-10)
    second = services.deduct_credits(member, 1)
    assert second.created_at == first.created_at
    clock.set_local(2026, 6, 2, 0, 0, 0)
    clock.advance(minutes=-1)  # 1 Jun, 23:59: the lot is still usable
    services.add_credits(member, 1)
    clock.set_local(2026, 6, 3)
    services.expire_due_credits()
    assert_chain_intact(account_of(member))  # also checks created_at never goes back


@pytest.mark.parametrize(
    ("available", "message"),
    [
        (D("0"), "No credits are available."),
        (D("1.00"), "Only 1 credit is available."),
        (D("35.00"), "Only 35 credits are available."),
        (D("1000"), "Only 1,000 credits are available."),
        (D("12.5"), "Only 12.50 credits are available."),
    ],
)
def test_the_refusal_says_what_is_available_as_balances_are_shown(available, message):
    assert InsufficientCredits(available=available).messages == [message]
