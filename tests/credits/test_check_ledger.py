"""`python manage.py check_ledger` and the nightly task: a clean ledger checks out, and each
kind of corruption is found, named and makes the command fail.

The database's guards refuse these corruptions (credits/sql/append_only.sql), so each test
plants its own with the triggers off (`session_replication_role = replica`, which the test
database's superuser may set), inside the test's transaction, which is rolled back.
"""

import datetime as dt
import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from credits import ledger_check, services, tasks
from credits.models import CreditAccount
from tests.factories import CompanyFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(clock):
    """Two customers with additions, deductions across lots and a written expiry."""
    maria = UserFactory(email="maria@example.com")
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=maria, role="manager")
    for customer in (maria, acme):
        services.add_credits(customer, 10, expires_on=dt.date(2026, 6, 3))
        services.add_credits(customer, 20)
        services.add_credits(customer, 5, expires_on=dt.date(2026, 6, 10))
        services.deduct_credits(customer, 3)
    clock.advance(days=3)
    services.expire_due_credits()  # 7 of the lot that expired on 3 June
    services.deduct_credits(maria, 6)  # from the lot of 5, then 1 of the never-expiring
    return {"maria": maria, "acme": acme}


def run(*args):
    """check_ledger's output, and whether it failed."""
    out = io.StringIO()
    try:
        call_command("check_ledger", *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def corrupt(sql, params=()):
    with connection.cursor() as cursor:
        # The checks at commit of the rows written so far run now, on the clean ledger.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def account_id(customer):
    return CreditAccount.objects.get(**{customer._meta.model_name: customer}).pk


def test_a_clean_ledger_checks_out(ledger):
    output, failed = run()
    assert failed is None
    assert "The ledger of every account checks out" in output
    assert ledger_check.run_checks().ok


def test_each_check_is_one_query_whatever_the_number_of_accounts(ledger, django_assert_num_queries):
    for _ in range(20):
        services.add_credits(UserFactory(), 1)
    with django_assert_num_queries(len(ledger_check.CHECKS)):
        ledger_check.run_checks()


def test_a_ledger_with_every_verb_checks_out(ledger, clock, settings):
    """Holds earmark lots, reversals and refunds give back to lots or into grace lots,
    transfers add one lot per date: none of it is a mismatch."""
    maria, acme = ledger["maria"], ledger["acme"]
    lot_day = clock.today() + dt.timedelta(days=2)
    services.add_credits(maria, 8, expires_on=lot_day)
    deduction = services.deduct_credits(maria, 8)  # from the dated lot
    booking = services.charge_credits(maria, 4, kind="booking")
    ends = clock.now + dt.timedelta(days=10)
    services.hold_credits(maria, 2, expires_at=ends, memo="Desk 3")  # stays held
    services.capture_hold(services.hold_credits(maria, 3, expires_at=ends), 2)
    services.release_hold(services.hold_credits(acme, 1, expires_at=ends))
    services.transfer_credits(acme, maria, 12)  # two dates: the lot of 10 June and never
    clock.advance(days=3)  # the dated lot's day passes
    services.reverse_transaction(deduction)  # into a grace lot
    services.refund_charge(booking, 1)
    services.reverse_transaction(services.add_credits(acme, 5))
    output, failed = run()
    assert failed is None, output


# (what is planted, the check that must find it, words its line says)
CORRUPTIONS = {
    "balance_after off the chain": (
        "UPDATE credits_credittransaction SET balance_after = balance_after + 1"
        " WHERE account_id = %(account)s AND seq = 2",
        "transaction chain",
        "transaction 2 follows 1",
    ),
    "a gap in seq": (
        "UPDATE credits_credittransaction SET seq = seq + 1"
        " WHERE account_id = %(account)s AND seq = (SELECT max(seq) FROM"
        " credits_credittransaction WHERE account_id = %(account)s)",
        "transaction chain",
        "follows",
    ),
    "account balance not its newest row": (
        "UPDATE credits_creditaccount SET balance = balance + 5 WHERE id = %(account)s",
        "balance = newest balance_after",
        "the account says balance",
    ),
    "lot remaining not amount less usages": (
        "UPDATE credits_creditlot SET remaining = remaining - 2 WHERE id = (SELECT min(id)"
        " FROM credits_creditlot WHERE account_id = %(account)s AND expires_on IS NULL)",
        "lot remaining = amount - usages",
        "but its usages took",
    ),
    "lot unlike its addition": (
        "UPDATE credits_creditlot SET expires_on = '2030-01-01' WHERE id = (SELECT min(id)"
        " FROM credits_creditlot WHERE account_id = %(account)s AND expires_on IS NULL)",
        "lot = its addition",
        "was added by transaction",
    ),
    "addition without its lot": (
        "UPDATE credits_creditlot SET allocation_id = (SELECT id FROM credits_credittransaction"
        " WHERE account_id = %(account)s AND seq = 4)"  # the deduction's id: no lot left for 1
        " WHERE allocation_id = (SELECT id FROM credits_credittransaction"
        " WHERE account_id = %(account)s AND seq = 1)",
        "addition has its lot",
        "transaction 1 adds 10.00 but has no lot",
    ),
    "deduction not what its usages took": (
        "DELETE FROM credits_creditlotusage WHERE transaction_id = (SELECT id FROM"
        " credits_credittransaction WHERE account_id = %(account)s AND seq = 4)",
        "deduction = its usages",
        "transaction 4 moves -3.00, but its usages took 0",
    ),
    "balance not what its lots hold": (
        "UPDATE credits_creditlot SET amount = amount + 1, remaining = remaining + 1"
        " WHERE id = (SELECT min(id) FROM credits_creditlot WHERE account_id = %(account)s"
        " AND expires_on IS NULL)",
        "balance = its lots",
        "but its lots hold",
    ),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_kind_of_corruption_is_found_and_fails_the_command(ledger, name):
    sql, check, words = CORRUPTIONS[name]
    acme = account_id(ledger["acme"])
    corrupt(sql, {"account": acme})
    report = ledger_check.run_checks()
    assert report.totals[check] >= 1
    assert {m.account_id for m in report.mismatches} == {acme}
    output, failed = run()
    assert failed and "mismatch" in failed
    assert f"{check}:" in output
    assert f"account {acme} company_{ledger['acme'].pk} (Acme Ltd):" in output
    assert words in output


def test_credits_left_in_a_lot_past_its_date_are_found(ledger, clock):
    clock.advance(days=10)  # Acme's lot of 5 expired on 10 June, unswept
    output, failed = run(f"company_{ledger['acme'].pk}")
    assert failed
    assert "expired lots written off: 1 mismatch" in output
    services.expire_due_credits()
    assert run()[1] is None


def test_only_the_named_customers_are_checked(ledger):
    corrupt(
        "UPDATE credits_creditaccount SET balance = balance + 5 WHERE id = %s",
        [account_id(ledger["acme"])],
    )
    assert run("maria@example.com")[1] is None
    assert run(f"user_{ledger['maria'].pk}")[1] is None
    assert run(f"company_{ledger['acme'].pk}", "maria@example.com")[1]


@pytest.mark.parametrize("name", ["user_999999", "acme", "company_x", "nobody@example.com"])
def test_an_unknown_customer_is_a_clear_error(ledger, name):
    with pytest.raises(CommandError, match=f"No customer '{name}'"):
        call_command("check_ledger", "maria@example.com", name)


def test_a_long_list_of_mismatches_is_cut_but_counted(ledger):
    for _ in range(ledger_check.SHOWN_PER_CHECK + 5):
        services.add_credits(UserFactory(), 1)
    corrupt("UPDATE credits_creditaccount SET balance = balance + 1")
    report = ledger_check.run_checks()
    total = ledger_check.SHOWN_PER_CHECK + 7
    assert report.totals["balance = newest balance_after"] == total
    output, _ = run()
    assert f"balance = newest balance_after: {total} mismatches" in output
    assert "... and 7 more" in output


def test_the_nightly_task_emails_the_admins_a_mismatch(ledger, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    assert tasks.check_ledger() is True
    assert mail.outbox == []
    corrupt("UPDATE credits_creditaccount SET balance = balance + 5")
    assert tasks.check_ledger() is False
    (email,) = mail.outbox
    assert email.to == ["ops@example.com"]
    assert email.subject == "The credit ledger check found 4 mismatches"
    assert "balance = newest balance_after: 2 mismatches" in email.body
    assert "maria@example.com" in email.body


def test_without_admins_the_superusers_are_told(ledger, settings):
    from customers.models import User

    settings.ADMINS = []
    User.objects.create_superuser("root@example.com", "x")
    User.objects.create_superuser("gone@example.com", "x", is_active=False)
    corrupt("UPDATE credits_creditaccount SET balance = balance + 5")
    tasks.check_ledger()
    assert mail.outbox[0].to == ["root@example.com"]


def test_beat_runs_it_nightly(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["check-ledger"]
    assert entry["task"] == "credits.tasks.check_ledger"
    assert entry["schedule"].hour == {3}
