"""The other verbs on the staff and member pages: each row's relation as a link, which
credits a row used, held and available, Reverse and Transfer credits (with and without
htmx), and who may use them."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from credits import selectors, services
from credits.models import CreditTransaction
from customers.models import CompanyMembership
from tests.factories import CompanyFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def adjuster():
    from django.contrib.auth.models import Permission

    admin = StaffFactory(first_name="Ada", last_name="Admin")
    admin.user_permissions.add(Permission.objects.get(codename="adjust_balance"))
    return admin


@pytest.fixture
def people(clock):
    tom = UserFactory(first_name="Tom", last_name="Becker", email="tom@example.com")
    acme = CompanyFactory(name="Acme Ltd")
    CompanyMembership.objects.create(company=acme, user=tom, role="manager")
    return tom, acme


def staff_list(customer):
    kind = (
        "users" if hasattr(customer, "email") and hasattr(customer, "first_name") else "companies"
    )
    return reverse("credits:transactions", args=[kind, customer.pk])


def test_the_history_links_each_row_to_its_relation(client, adjuster, people):
    tom, acme = people
    services.add_credits(tom, 5, expires_on=dt.date(2026, 12, 4))
    services.add_credits(tom, 3)
    deduction = services.deduct_credits(tom, 6, actor=adjuster)
    reversal = services.reverse_transaction(deduction, actor=adjuster)
    out_row, in_row = services.transfer_credits(tom, acme, 2)
    charge = services.charge_credits(acme, 1, kind="booking", on_behalf_of=tom)

    client.force_login(adjuster)
    page = client.get(staff_list(tom)).content.decode()
    assert "Reversed by the reversal of 1 Jun 2026" in page
    assert f"?before={reversal.seq + 1}#tx-{reversal.pk}" in page
    assert "Reversal of the deduction of 1 Jun 2026" in page
    assert "Transfer to Acme Ltd" in page
    assert f'href="{staff_list(acme)}?before={in_row.seq + 1}#tx-{in_row.pk}"' in page
    assert "5 from credits expiring 4 Dec 2026, 1 from credits that never expire" in page
    company_page = client.get(staff_list(acme)).content.decode()
    assert "Transfer from Tom Becker" in company_page
    assert "For Tom Becker" in company_page

    # The member sees the same relations on their pages, and the CSV says them too.
    client.force_login(tom)
    mine = client.get(reverse("member:transactions", args=["users", tom.pk])).content.decode()
    assert "Reversed by the reversal of 1 Jun 2026" in mine
    assert "<details" in mine and "Credits used" in mine
    exported = client.get(reverse("member:transactions-csv", args=["users", tom.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[1][7] == "Transfer to Acme Ltd"
    assert charge.pk


def test_reverse_confirms_what_will_happen_then_reverses_without_javascript(
    client, adjuster, people
):
    tom, _ = people
    services.add_credits(tom, 5, expires_on=dt.date(2026, 12, 4))
    services.add_credits(tom, 3)
    deduction = services.deduct_credits(tom, 6)
    url = reverse("credits:reverse", args=["users", tom.pk, deduction.pk])
    client.force_login(adjuster)

    listing = client.get(staff_list(tom)).content.decode()
    # The deduction and the addition that still holds credits (the other was used up).
    assert listing.count(">Reverse</a>") == 2
    confirm = client.get(url).content.decode()
    assert (
        "Returns 6 credits: 5 to credits expiring 4 Dec 2026, 1 to credits that never expire."
        in confirm
    )
    key = re.search(r'name="idempotency_key" value="(\w+)"', confirm).group(1)
    done = client.post(url, {"idempotency_key": key, "memo": "Charged twice"})
    assert done.status_code == 302
    again = client.post(url, {"idempotency_key": key, "memo": "Charged twice"})
    assert again.status_code == 302  # the same form twice: one reversal
    assert CreditTransaction.objects.filter(kind="reversal").count() == 1
    assert client.get(url).status_code == 404  # reversed: no second confirm page


def test_reverse_and_transfer_need_the_permission(client, people):
    tom, acme = people
    added = services.add_credits(tom, 5)
    client.force_login(StaffFactory())
    assert (
        client.get(reverse("credits:reverse", args=["users", tom.pk, added.pk])).status_code == 403
    )
    assert client.get(reverse("credits:transfer", args=["users", tom.pk])).status_code == 403
    assert ">Reverse</a>" not in client.get(staff_list(tom)).content.decode()


def test_transfer_credits_moves_them_and_shows_the_held_and_available(client, adjuster, people):
    tom, acme = people
    services.add_credits(acme, 20)
    hold = services.hold_credits(
        acme, 5, expires_at=dt.datetime(2026, 6, 3, 10, tzinfo=dt.UTC), memo="Room 4"
    )
    client.force_login(adjuster)
    profile = client.get(acme.get_absolute_url()).content.decode()
    assert "5 held" in profile and "15 available" in profile
    assert "Room 4" in profile

    url = reverse("credits:transfer", args=["companies", acme.pk])
    form = client.get(url).content.decode()
    key = re.search(r'name="idempotency_key" value="(\w+)"', form).group(1)
    refused = client.post(
        url, {"idempotency_key": key, "direction": "out", "other": tom.pk, "amount": "16"}
    )
    assert refused.status_code == 422
    assert "Only 15 credits are available." in refused.content.decode()
    done = client.post(
        url,
        {"idempotency_key": key, "direction": "out", "other": tom.pk, "amount": "15"},
        headers={"HX-Request": "true", "HX-Target": "adjust-dialog-body"},
    )
    assert done.status_code == 204
    assert "creditsChanged" in done["HX-Trigger"]
    assert CreditTransaction.objects.get(kind="transfer_in").account.user == tom
    assert hold.pk


def test_a_manager_transfers_between_company_and_member_and_sets_limits(client, people):
    tom, acme = people
    lena = UserFactory(first_name="Lena", last_name="Novak")
    membership = CompanyMembership.objects.create(company=acme, user=lena)
    services.add_credits(acme, 20, expires_on=dt.date(2026, 6, 30))
    members_url = reverse("member:company-members", args=[acme.pk])
    client.force_login(tom)

    page = client.get(members_url).content.decode()
    assert "Transfer credits" in page and "No limit" in page
    key = re.search(r'name="idempotency_key" value="(\w+)"', page).group(1)
    transfer_url = reverse("credits:company-transfer", args=[acme.pk])
    done = client.post(
        transfer_url,
        {"idempotency_key": key, "direction": "out", "other": lena.pk, "amount": "4"},
    )
    assert done.status_code == 302
    assert selectors.get_expiration_breakdown(lena) == [(dt.date(2026, 6, 30), D("4"))]
    refused = client.post(
        transfer_url,
        {"idempotency_key": "other", "direction": "in", "other": lena.pk, "amount": "5"},
    )
    assert refused.status_code == 422
    assert "Only 4 credits are available." in refused.content.decode()

    limit_url = reverse("credits:company-member-limit", args=[acme.pk, lena.pk])
    assert client.post(limit_url, {"monthly_credit_limit": "10"}).status_code == 302
    membership.refresh_from_db()
    assert membership.monthly_credit_limit == D("10")
    services.charge_credits(acme, 3, kind="booking", on_behalf_of=lena)
    assert "7 left this month" in client.get(members_url).content.decode()

    # The member sees what is left of the month's limit; she cannot manage the company.
    client.force_login(lena)
    acme.members_can_use_credits = True
    acme.save()
    membership_page = client.get(reverse("member:membership")).content.decode()
    assert "Your monthly limit: 7 of 10 credits left this month." in membership_page
    assert client.post(limit_url, {"monthly_credit_limit": ""}).status_code == 404
    assert client.post(transfer_url, {"direction": "in"}).status_code == 404


def test_grant_to_many_reviews_then_grants_once_and_shows_the_result(
    client, adjuster, people, django_capture_on_commit_callbacks, eager_tasks
):
    tom, acme = people
    lena = UserFactory(first_name="Lena", last_name="Novak", email="lena@example.com")
    sam = UserFactory(first_name="Sam", last_name="Okafor", email="sam@example.com")
    CompanyMembership.objects.create(company=acme, user=lena)
    client.force_login(adjuster)
    url = reverse("credits:grant")
    assert "Grant to many" in client.get(reverse("customers:list")).content.decode()
    form = client.get(url).content.decode()
    key = re.search(r'name="idempotency_key" value="(\w+)"', form).group(1)
    data = {
        "idempotency_key": key,
        "company": acme.pk,
        "emails": "SAM@example.com, nobody@example.com",
        "amount": "5",
        "memo": "Sorry for the outage",
    }
    unknown = client.post(url, data)
    assert unknown.status_code == 422
    assert "No user has these emails: nobody@example.com." in unknown.content.decode()

    data["emails"] = "sam@example.com\nlena@example.com"
    review = client.post(url, data).content.decode()
    assert "3 customers" in review and "15 credits" in review
    assert CreditTransaction.objects.count() == 0  # nothing until confirmed
    reviewed = re.search(r'name="confirmed" value="(\w+)"', review).group(1)
    # Confirming other values than those reviewed shows the review again.
    changed = client.post(url, {**data, "amount": "50", "confirmed": reviewed}).content.decode()
    assert "150 credits" in changed and CreditTransaction.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):  # the task, run eagerly
        done = client.post(url, {**data, "confirmed": reviewed})
    assert done.status_code == 302
    again = client.post(url, {**data, "confirmed": reviewed})  # the same form twice
    assert again["Location"] == done["Location"]
    result = client.get(done["Location"]).content.decode()
    assert "3 of 3 customers have their credits" in result
    for person in (tom, lena, sam):
        assert selectors.get_balance(person) == D("5")
        assert person.display_name in result


def test_grant_to_many_needs_the_permission(client, people):
    client.force_login(StaffFactory())
    assert client.get(reverse("credits:grant")).status_code == 403
    assert "Grant to many" not in client.get(reverse("customers:list")).content.decode()
