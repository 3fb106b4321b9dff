"""The Django admin: ledger rows are read-only; adjustments go through the services."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import reverse

from credits import selectors, services
from credits.models import (
    CreditBatch,
    CreditHold,
    CreditHoldLot,
    CreditLotReturn,
    CreditTransaction,
)
from tests.credits.ledger import snapshot
from tests.factories import CompanyFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(client):
    admin = StaffFactory(is_superuser=True)
    client.force_login(admin)
    return admin


def adjust_url(customer):
    model = customer._meta.model_name
    return reverse(f"admin:customers_{model}_adjust_credits", args=[customer.pk])


def test_ledger_lists_are_searchable_and_read_only(client, superuser, clock):
    member = UserFactory(email="findme@example.com")
    services.add_credits(member, 5, memo="Welcome bonus")
    listing = client.get(reverse("admin:credits_credittransaction_changelist"), {"q": "findme"})
    assert listing.status_code == 200
    assert b"Welcome bonus" in listing.content
    row = CreditTransaction.objects.get()
    change = client.get(reverse("admin:credits_credittransaction_change", args=[row.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content  # no save button: view only
    assert client.get(reverse("admin:credits_credittransaction_add")).status_code == 403
    delete = reverse("admin:credits_credittransaction_delete", args=[row.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert CreditTransaction.objects.count() == 1


def test_adjusting_from_the_admin_goes_through_the_services(client, superuser, clock):
    company = CompanyFactory()
    page = client.get(reverse("admin:customers_company_change", args=[company.pk]))
    assert b"Adjust credit balance" in page.content
    form = client.get(adjust_url(company))
    key = form.context["form"].initial["idempotency_key"]
    data = {"kind": "add", "amount": "40", "memo": "Top-up", "idempotency_key": key}
    assert client.post(adjust_url(company), data).status_code == 302
    assert client.post(adjust_url(company), data).status_code == 302  # resubmitted
    assert selectors.get_balance(company) == Decimal("40")
    added = selectors.get_transactions(company).get()
    assert (added.actor, added.memo) == (superuser, "Top-up")


def test_admin_deduction_larger_than_balance_shows_the_available_credits(client, superuser, clock):
    member = UserFactory()
    services.add_credits(member, 3)
    before = snapshot()
    response = client.post(
        adjust_url(member),
        {"kind": "deduct", "amount": "5", "memo": "", "idempotency_key": "k-1"},
    )
    assert response.status_code == 422
    assert "Only 3 credits are available." in response.content.decode()
    assert snapshot() == before


def test_staff_without_the_permission_cannot_adjust_in_the_admin(client, clock):
    viewer = StaffFactory()
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(viewer)
    member = UserFactory()
    before = snapshot()
    response = client.post(
        adjust_url(member), {"kind": "add", "amount": "5", "idempotency_key": "k"}
    )
    assert response.status_code == 403
    assert snapshot() == before


def test_staff_who_may_edit_users_cannot_grant_themselves_permissions(client):
    editor = StaffFactory()
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user"])
    )
    client.force_login(editor)
    url = reverse("admin:customers_user_change", args=[editor.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="user_permissions"' not in page.content.decode()
    assert 'name="is_superuser"' not in page.content.decode()
    response = client.post(
        url,
        {
            "email": editor.email,
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
            "first_name": "Sneaky",
            "last_name": "",
            "is_active": "on",
            "is_superuser": "on",
            "user_permissions": [Permission.objects.get(codename="adjust_balance").pk],
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    # A staff account, their own included, is a superuser's to change (their name they
    # change on their Account page): the page is read-only and the POST is refused.
    assert response.status_code == 403
    editor = type(editor).objects.get(pk=editor.pk)  # fresh permission cache
    assert editor.first_name != "Sneaky"
    assert not editor.is_superuser
    assert not editor.has_perm("credits.adjust_balance")


LEDGER_MODELS = [
    "credittransaction",
    "creditlot",
    "creditaccount",
    "creditlotusage",
    "creditlotreturn",
    "credithold",
    "creditholdlot",
    "creditbatch",
]


def test_every_ledger_model_has_a_read_only_admin_page(client, superuser, clock):
    assert {m._meta.model_name for m in apps.get_app_config("credits").get_models()} == set(
        LEDGER_MODELS
    )
    assert all(admin.site.is_registered(m) for m in apps.get_app_config("credits").get_models())
    member = UserFactory(email="findme@example.com")
    services.add_credits(member, 10, memo="Welcome")
    services.reverse_transaction(services.deduct_credits(member, 2))
    services.hold_credits(member, 3, expires_at=clock.now + dt.timedelta(days=1), memo="Desk 3")
    services.grant_to_many([member], 1, memo="Outage", idempotency_key="outage")
    assert CreditLotReturn.objects.exists() and CreditHoldLot.objects.exists()
    assert CreditHold.objects.exists() and CreditBatch.objects.exists()

    for name in LEDGER_MODELS:
        listing = client.get(reverse(f"admin:credits_{name}_changelist"), {"q": "findme"})
        assert listing.status_code == 200, name
        by_first_column = client.get(reverse(f"admin:credits_{name}_changelist"), {"o": "1"})
        assert by_first_column.status_code == 200, name
        row = apps.get_model("credits", name).objects.order_by("pk").first()
        change = client.get(reverse(f"admin:credits_{name}_change", args=[row.pk]))
        assert change.status_code == 200, name
        assert b'name="_save"' not in change.content, name  # view only
        assert not change.context["adminform"].form.fields, name  # every field read-only
        for inline in change.context["inline_admin_formsets"]:
            assert not inline.has_add_permission and not inline.has_change_permission, name
        assert client.get(reverse(f"admin:credits_{name}_add")).status_code == 403, name
        delete = reverse(f"admin:credits_{name}_delete", args=[row.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403, name


def test_a_batch_whose_run_failed_can_be_run_again_from_the_admin(client, superuser, clock):
    batch = services.grant_to_many([UserFactory()], 1, idempotency_key="outage")
    CreditBatch.objects.filter(pk=batch.pk).update(run_status="failed", run_attempts=6)
    listing = reverse("admin:credits_creditbatch_changelist")
    page = client.get(listing, {"run_status__exact": "failed"}).content.decode()
    assert "Run failed batches again" in page
    client.post(listing, {"action": "run_failed_again", "_selected_action": [batch.pk]})
    batch.refresh_from_db()
    assert (batch.run_status, batch.run_attempts, batch.next_run_at) == ("pending", 0, clock.now)
