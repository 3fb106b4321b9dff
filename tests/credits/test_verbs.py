"""The ledger's other verbs, by worked example: reverse, refund, hold, capture, release,
transfer, charge on behalf of a member, grant to many. Each example shows the expiration
breakdown before and after; each refusal writes nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from credits import selectors, services
from credits.exceptions import CreditLimitExceeded, IdempotencyConflict, InsufficientCredits
from credits.models import CreditAccount, CreditBatch, CreditLot, CreditTransaction
from customers.models import CompanyMembership
from notifications.models import Notification
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


def assert_ledger_sound(*customers):
    for customer in customers:
        account = account_of(customer)
        assert_chain_intact(account)
        assert_lots_consistent(account)
        # balance = unexpired remaining + held; available = balance - held >= 0
        assert selectors.get_available_balance(customer) >= 0
        assert selectors.get_available_balance(customer) == selectors.get_balance(
            customer
        ) - selectors.get_held_balance(customer)


def lot_of(row):
    return CreditLot.objects.get(allocation=row)


def local(year, month, day, hour=12):
    return timezone.make_aware(dt.datetime(year, month, day, hour), timezone.get_default_timezone())


def code_of(error: ValidationError) -> str:
    if hasattr(error, "code"):
        return error.code
    return next(iter(error.error_dict.values()))[0].code


def refused_without_writing(call, error=ValidationError):
    before = snapshot()
    with pytest.raises(error) as raised:
        call()
    assert snapshot() == before
    return raised.value


# --- Reverse ------------------------------------------------------------------------------


def test_reversing_an_unused_addition_takes_it_all_back(clock):
    member, admin = UserFactory(), StaffFactory()
    added = services.add_credits(member, 25, expires_on=dt.date(2026, 6, 30), actor=admin)
    assert breakdown_as_text(member) == [("2026-06-30", "25.00")]

    reversal = services.reverse_transaction(added, memo="Typed 25 for 2.5", actor=admin)

    assert reversal.kind == "reversal"
    assert reversal.amount == D("-25.00")
    assert reversal.reverses_id == added.pk
    assert CreditTransaction.objects.get(pk=added.pk).reversed_by == reversal
    assert breakdown_as_text(member) == []
    assert taken_from(reversal) == {lot_of(added).pk: D("25.00")}
    assert_ledger_sound(member)


def test_reversing_a_used_addition_takes_back_what_remains(clock):
    member = UserFactory()
    added = services.add_credits(member, 1000)
    services.add_credits(member, 5, expires_on=dt.date(2026, 6, 30))
    services.deduct_credits(member, 10)  # 5 from the dated lot, 5 from the 1000
    assert breakdown_as_text(member) == [("never", "995.00")]
    assert services.reversal_amount(added) == D("-995.00")

    reversal = services.reverse_transaction(added)

    assert reversal.amount == D("-995.00")
    assert breakdown_as_text(member) == []
    assert selectors.get_balance(member) == 0
    assert_ledger_sound(member)


def test_reversing_a_deduction_returns_what_it_took_to_the_lots_it_took_it_from(clock):
    member = UserFactory()
    dated = services.add_credits(member, 5, expires_on=dt.date(2026, 12, 4))
    forever = services.add_credits(member, 3)
    deduction = services.deduct_credits(member, 6)
    assert breakdown_as_text(member) == [("never", "2.00")]

    reversal = services.reverse_transaction(deduction)

    assert reversal.amount == D("6.00")
    assert breakdown_as_text(member) == [("2026-12-04", "5.00"), ("never", "3.00")]
    returns = {r.lot_id: r.amount for r in reversal.returns.all()}
    assert returns == {lot_of(dated).pk: D("5.00"), lot_of(forever).pk: D("1.00")}
    assert reversal.lots.count() == 0  # no new lot: each share kept its date
    assert_ledger_sound(member)


def test_reversing_a_deduction_whose_lot_expired_meanwhile_gives_a_grace_lot(clock, settings):
    settings.CREDITS_REFUND_GRACE_DAYS = 7
    member = UserFactory()
    services.add_credits(member, 5, expires_on=dt.date(2026, 6, 10))
    services.add_credits(member, 3)
    deduction = services.deduct_credits(member, 6)  # 5 from the dated lot, 1 from never
    clock.set_local(2026, 6, 15)
    assert breakdown_as_text(member) == [("never", "2.00")]

    reversal = services.reverse_transaction(deduction)

    # The dated share comes back as 5 credits that last 7 days from today, never as
    # credits that expire at once; the never-expiring share goes back to its lot.
    assert reversal.amount == D("6.00")
    assert breakdown_as_text(member) == [("2026-06-22", "5.00"), ("never", "3.00")]
    grace = reversal.lots.get()
    assert (grace.amount, grace.expires_on) == (D("5.00"), dt.date(2026, 6, 22))
    assert_ledger_sound(member)


def test_what_cannot_be_reversed_is_refused_and_nothing_is_written(clock):
    member = UserFactory()
    used = services.add_credits(member, 4)
    services.deduct_credits(member, 4)
    refused = refused_without_writing(lambda: services.reverse_transaction(used))
    assert refused.code == "nothing_left"
    assert "Nothing is left of this addition" in refused.messages[0]

    added = services.add_credits(member, 10)
    reversal = services.reverse_transaction(added)
    twice = refused_without_writing(lambda: services.reverse_transaction(added))
    assert twice.code == "reversed_already"
    of_reversal = refused_without_writing(lambda: services.reverse_transaction(reversal))
    assert of_reversal.code == "reversal_reversed"

    services.add_credits(member, 2, expires_on=dt.date(2026, 6, 2))
    clock.set_local(2026, 6, 5)
    services.expire_due_credits()
    expiry = CreditTransaction.objects.get(account=account_of(member), kind="expiration")
    not_admin = refused_without_writing(lambda: services.reverse_transaction(expiry))
    assert not_admin.code == "not_reversible"


def test_a_reversal_replays_by_key_and_tells_the_member(clock):
    member = UserFactory()
    added = services.add_credits(member, 25)
    first = services.reverse_transaction(added, memo="Oops", idempotency_key="undo-1")
    again = services.reverse_transaction(added, memo="Oops", idempotency_key="undo-1")
    assert again.pk == first.pk
    with pytest.raises(IdempotencyConflict):
        services.reverse_transaction(added, memo="Other", idempotency_key="undo-1")
    told = Notification.objects.get(recipient=member, reference=f"transaction:{first.pk}")
    assert told.body.startswith("25 credits were taken back from your balance: the addition of")
    assert told.body.endswith("was reversed. Memo: Oops")


# --- Refund -------------------------------------------------------------------------------


def test_refunds_go_back_latest_expiring_first_and_never_above_the_charge(clock):
    member = UserFactory()
    dated = services.add_credits(member, 5, expires_on=dt.date(2026, 12, 4))
    forever = services.add_credits(member, 3)
    charge = services.charge_credits(member, 6, kind="booking", memo="Room 4")
    assert breakdown_as_text(member) == [("never", "2.00")]

    part = services.refund_charge(charge, 2, memo="Ended early")
    # Latest-expiring first: the never-expiring share (1) and then 1 of the dated one.
    assert part.kind == "refund" and part.amount == D("2.00")
    assert part.refunded_charge_id == charge.pk
    assert {r.lot_id: r.amount for r in part.returns.all()} == {
        lot_of(forever).pk: D("1.00"),
        lot_of(dated).pk: D("1.00"),
    }
    assert breakdown_as_text(member) == [("2026-12-04", "1.00"), ("never", "3.00")]

    above = refused_without_writing(lambda: services.refund_charge(charge, 5))
    assert above.message_dict == {
        "amount": ["Only 4 credits of this booking can still be refunded."]
    }

    rest = services.refund_charge(charge)  # the rest: 4
    assert rest.amount == D("4.00")
    assert breakdown_as_text(member) == [("2026-12-04", "5.00"), ("never", "3.00")]
    done = refused_without_writing(lambda: services.refund_charge(charge))
    assert done.code == "refunded"
    assert_ledger_sound(member)


def test_a_refund_whose_lot_expired_meanwhile_comes_back_as_a_grace_lot(clock):
    member = UserFactory()
    services.add_credits(member, 5, expires_on=dt.date(2026, 6, 10))
    charge = services.charge_credits(member, 5, kind="booking")
    clock.set_local(2026, 6, 20)
    assert breakdown_as_text(member) == []

    refund = services.refund_charge(charge)

    assert breakdown_as_text(member) == [("2026-06-27", "5.00")]
    assert refund.lots.get().expires_on == dt.date(2026, 6, 27)
    assert_ledger_sound(member)


def test_only_a_booking_is_refunded(clock):
    member = UserFactory()
    services.add_credits(member, 5)
    deduction = services.deduct_credits(member, 2)
    with pytest.raises(ValidationError):
        services.refund_charge(deduction)


# --- Hold, capture, release ---------------------------------------------------------------


def test_a_hold_reduces_what_is_available_and_keeps_its_credits_from_expiring(clock):
    member = UserFactory()
    services.add_credits(member, 4, expires_on=dt.date(2026, 6, 10))
    services.add_credits(member, 6)
    breakdown = [("2026-06-10", "4.00"), ("never", "6.00")]

    hold = services.hold_credits(member, 5, expires_at=local(2026, 6, 20), memo="Desk 3")

    assert (hold.status, hold.amount) == ("held", D("5.00"))
    assert selectors.get_balance(member) == D("10.00")
    assert selectors.get_held_balance(member) == D("5.00")
    assert selectors.get_available_balance(member) == D("5.00")
    assert breakdown_as_text(member) == breakdown  # the breakdown includes held credits
    refused = refused_without_writing(
        lambda: services.deduct_credits(member, 6), InsufficientCredits
    )
    assert refused.available == D("5.00")
    refused_without_writing(
        lambda: services.hold_credits(member, 6, expires_at=local(2026, 6, 20)),
        InsufficientCredits,
    )

    # The dated lot's day passes while 4 of it are held: the held 4 do not expire.
    clock.set_local(2026, 6, 12)
    assert services.expire_due_credits() == 0
    assert selectors.get_balance(member) == D("10.00")
    assert breakdown_as_text(member) == breakdown
    assert_ledger_sound(member)

    # Capture 3: the booking takes the earliest-expiring held credits (3 of the 4 dated);
    # the rest is freed, and the freed dated credit, whose day has passed, expires then.
    booking = services.capture_hold(hold, 3, memo="Desk 3, 2 hours")
    assert booking.kind == "booking" and booking.amount == D("-3.00")
    assert booking.hold_id == hold.pk
    hold.refresh_from_db()
    assert (hold.status, hold.captured) == ("captured", D("3.00"))
    assert selectors.get_held_balance(member) == 0
    assert breakdown_as_text(member) == [("never", "6.00")]
    expiry = CreditTransaction.objects.get(account=account_of(member), kind="expiration")
    assert expiry.amount == D("-1.00") and expiry.seq > booking.seq
    assert_ledger_sound(member)


def test_capture_refusals_write_nothing(clock):
    member = UserFactory()
    services.add_credits(member, 10)
    hold = services.hold_credits(member, 5, expires_at=local(2026, 6, 2))
    above = refused_without_writing(lambda: services.capture_hold(hold, 6))
    assert code_of(above) == "above_hold"

    clock.set_local(2026, 6, 3)
    expired = refused_without_writing(lambda: services.capture_hold(hold))
    # The hold's time is up: nothing is captured (and no expiry of it was kept either).
    assert expired.code == "hold_expired"

    services.expire_due_credits()
    hold.refresh_from_db()
    assert hold.status == "expired"
    assert selectors.get_available_balance(member) == D("10.00")
    again = services.hold_credits(member, 4, expires_at=local(2026, 6, 10))
    services.capture_hold(again)
    twice = refused_without_writing(lambda: services.capture_hold(again))
    assert twice.code == "hold_captured"
    assert_ledger_sound(member)


def test_a_hold_that_expires_frees_its_credits_and_expires_a_lot_whose_day_passed(clock):
    member = UserFactory()
    services.add_credits(member, 4, expires_on=dt.date(2026, 6, 3))
    services.add_credits(member, 2)
    hold = services.hold_credits(member, 5, expires_at=local(2026, 6, 5))
    clock.set_local(2026, 6, 4)
    assert selectors.get_balance(member) == D("6.00")  # held 4 of the dated lot count
    clock.set_local(2026, 6, 6)
    # Before the sweep: the hold's time is up, so its dated share is gone from the balance.
    assert selectors.get_balance(member) == D("2.00")
    assert selectors.get_held_balance(member) == 0

    assert services.expire_due_credits() == 1

    hold.refresh_from_db()
    assert hold.status == "expired"
    assert breakdown_as_text(member) == [("never", "2.00")]
    assert_ledger_sound(member)


def test_release_frees_the_credits(clock):
    member = UserFactory()
    services.add_credits(member, 10, expires_on=dt.date(2026, 7, 1))
    hold = services.hold_credits(member, 7, expires_at=local(2026, 6, 10))
    assert selectors.get_available_balance(member) == D("3.00")
    released = services.release_hold(hold)
    assert released.status == "released"
    assert selectors.get_available_balance(member) == D("10.00")
    assert breakdown_as_text(member) == [("2026-07-01", "10.00")]
    assert services.release_hold(released).status == "released"  # changes nothing
    told = Notification.objects.filter(recipient=member, kind="credits_held")
    assert sorted(n.subject for n in told) == [
        "7 credits held in your balance",
        "7 credits released in your balance",
    ]
    assert_ledger_sound(member)


def test_a_hold_replays_by_key(clock):
    member = UserFactory()
    services.add_credits(member, 10)
    ends = local(2026, 6, 10)
    first = services.hold_credits(member, 3, expires_at=ends, idempotency_key="h-1")
    again = services.hold_credits(member, 3, expires_at=ends, idempotency_key="h-1")
    assert again.pk == first.pk
    assert selectors.get_held_balance(member) == D("3.00")
    with pytest.raises(IdempotencyConflict):
        services.hold_credits(member, 4, expires_at=ends, idempotency_key="h-1")


# --- Transfer -----------------------------------------------------------------------------


def test_a_transfer_keeps_the_expiration_dates(clock):
    member = UserFactory(first_name="Tom", last_name="Becker")
    company = CompanyFactory(name="Acme Ltd")
    services.add_credits(member, 4, expires_on=dt.date(2026, 6, 30))
    services.add_credits(member, 6)
    services.add_credits(company, 1, expires_on=dt.date(2026, 6, 30))

    out_row, in_row = services.transfer_credits(member, company, 5, memo="Pool")

    assert (out_row.kind, out_row.amount) == ("transfer_out", D("-5.00"))
    assert (in_row.kind, in_row.amount) == ("transfer_in", D("5.00"))
    assert in_row.transfer_out_id == out_row.pk
    assert breakdown_as_text(member) == [("never", "5.00")]
    assert breakdown_as_text(company) == [("2026-06-30", "5.00"), ("never", "1.00")]
    told = Notification.objects.get(recipient=member, reference=f"transaction:{out_row.pk}")
    assert told.body == ("5 credits were transferred from your balance to Acme Ltd. Memo: Pool")
    assert_ledger_sound(member, company)


def test_a_transfer_beyond_what_is_available_is_refused(clock):
    member, company = UserFactory(), CompanyFactory()
    services.add_credits(member, 10)
    services.hold_credits(member, 6, expires_at=local(2026, 6, 10))
    refused = refused_without_writing(
        lambda: services.transfer_credits(member, company, 5), InsufficientCredits
    )
    assert refused.available == D("4.00")


def test_a_transfer_replays_by_key(clock):
    member, company = UserFactory(), CompanyFactory()
    services.add_credits(member, 10)
    first = services.transfer_credits(member, company, 2, idempotency_key="t-1")
    again = services.transfer_credits(member, company, 2, idempotency_key="t-1")
    assert [row.pk for row in again] == [row.pk for row in first]
    with pytest.raises(IdempotencyConflict):
        services.transfer_credits(member, company, 3, idempotency_key="t-1")
    assert selectors.get_balance(company) == D("2.00")


# --- Charge on behalf of a member, monthly limit ------------------------------------------


def test_a_members_monthly_limit_counts_charges_net_of_refunds(clock):
    company = CompanyFactory()
    member = UserFactory()
    membership = CompanyMembership.objects.create(
        company=company, user=member, monthly_credit_limit=D("10")
    )
    services.add_credits(company, 100)
    first = services.charge_credits(company, 6, kind="booking", on_behalf_of=member)
    assert first.on_behalf_of_id == member.pk
    assert selectors.get_monthly_limit_left(membership) == D("4.00")

    refused = refused_without_writing(
        lambda: services.charge_credits(company, 5, kind="booking", on_behalf_of=member),
        CreditLimitExceeded,
    )
    assert refused.remaining == D("4.00")
    assert refused.messages == ["Only 4 credits are left of this member's monthly limit."]

    services.refund_charge(first, 2)
    assert selectors.get_monthly_limit_left(membership) == D("6.00")
    services.charge_credits(company, 5, kind="booking", on_behalf_of=member)
    assert selectors.get_monthly_limit_left(membership) == D("1.00")

    clock.set_local(2026, 7, 1, 0, 30)  # a new month in the space's zone
    assert selectors.get_monthly_limit_left(membership) == D("10.00")
    assert_ledger_sound(company)


def test_a_charge_on_behalf_of_someone_not_in_the_company_is_refused(clock):
    company, outsider = CompanyFactory(), UserFactory()
    services.add_credits(company, 10)
    refused = refused_without_writing(
        lambda: services.charge_credits(company, 1, kind="booking", on_behalf_of=outsider)
    )
    assert code_of(refused) == "not_member"


# --- Grant to many ------------------------------------------------------------------------


def test_grant_to_many_adds_once_to_each_and_running_it_again_adds_nothing(
    clock, django_capture_on_commit_callbacks, eager_tasks
):
    admin = StaffFactory()
    members = [UserFactory() for _ in range(3)]
    company = CompanyFactory()

    with pytest.raises(ValidationError):
        services.grant_to_many(members, 5, idempotency_key="")
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.grant_to_many(
            [*members, company, members[0]],
            5,
            expires_on=dt.date(2026, 6, 30),
            memo="Sorry for the outage",
            actor=admin,
            idempotency_key="outage-1",
        )
    batch.refresh_from_db()
    assert batch.status == "done"
    assert batch.total == 4
    assert batch.transactions.count() == 4
    for customer in [*members, company]:
        assert breakdown_as_text(customer) == [("2026-06-30", "5.00")]

    again = services.grant_to_many(
        [*members, company],
        5,
        expires_on=dt.date(2026, 6, 30),
        memo="Sorry for the outage",
        actor=admin,
        idempotency_key="outage-1",
    )
    assert again.pk == batch.pk
    services.run_credit_batch(batch.pk)  # the task delivered twice
    assert CreditBatch.objects.count() == 1
    assert CreditTransaction.objects.filter(batch=batch).count() == 4
    assert selectors.get_balance(members[0]) == D("5.00")
    with pytest.raises(IdempotencyConflict):
        services.grant_to_many(members, 6, actor=admin, idempotency_key="outage-1")
