import pytest
from django.core.management import call_command

from credits import selectors
from credits.models import CreditAccount, CreditBatch, CreditHold, CreditTransaction
from customers.models import Company, User
from tests.credits.ledger import assert_chain_intact, assert_lots_consistent

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_people_companies_and_a_consistent_history():
    call_command("seed_demo")
    call_command("seed_demo")  # a second run changes nothing
    assert User.objects.get(email="admin@example.com").is_superuser
    viewer = User.objects.get(email="viewer@example.com")
    assert viewer.is_staff and not viewer.has_perm("credits.adjust_balance")
    assert Company.objects.count() == 2
    acme = Company.objects.get(name="Acme Ltd")
    assert acme.memberships.filter(role="manager").count() == 1
    assert selectors.get_balance(acme) > 0
    kinds = set(CreditTransaction.objects.values_list("kind", flat=True))
    assert kinds == {
        "admin_allocation",
        "admin_charge",
        "expiration",
        "reversal",
        "booking",
        "refund",
        "transfer_out",
        "transfer_in",
    }
    # Each verb has something to show: holds open and captured, a limit, a finished batch.
    assert sorted(CreditHold.objects.values_list("status", flat=True)) == ["captured", "held"]
    assert selectors.get_held_balance(User.objects.get(email="maria@example.com")) == 6
    tom = acme.memberships.get(user__email="tom@example.com")
    assert tom.monthly_credit_limit == 40
    assert selectors.get_monthly_limit_left(tom) == 32
    batch = CreditBatch.objects.get()
    assert (batch.status, batch.total, batch.transactions.count()) == ("done", 3, 3)
    for account in CreditAccount.objects.all():
        assert_chain_intact(account)
        assert_lots_consistent(account)
    user = User.objects.get(email="maria@example.com")
    assert user.check_password("spacecredits")
    assert len(selectors.get_expiration_breakdown(user)) == 2
