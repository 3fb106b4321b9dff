"""Who turned "Members can see and use company credits" on or off, and when."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from customers.models import CreditsVisibilityChange
from tests.factories import CompanyFactory, MembershipFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def switch(client, company, on: bool):
    data = {"members_can_use_credits": "on"} if on else {}
    return client.post(f"/membership/companies/{company.pk}/members/credits-visibility/", data)


def test_each_change_is_recorded_and_shown_on_the_members_page(clock):
    acme = CompanyFactory(name="Acme Ltd")
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    sam = UserFactory(first_name="Sam", last_name="Okafor")
    MembershipFactory(company=acme, user=maria, role="manager")
    MembershipFactory(company=acme, user=sam, role="manager")
    as_maria, as_sam = Client(), Client()
    as_maria.force_login(maria)
    as_sam.force_login(sam)
    page = as_maria.get(f"/membership/companies/{acme.pk}/members/").content.decode()
    assert "Not changed since the company was set up." in page

    clock.set_local(2026, 6, 1, 9, 30)
    assert switch(as_maria, acme, True).status_code == 302
    clock.set_local(2026, 6, 2, 14, 5)
    switch(as_sam, acme, False)
    switch(as_sam, acme, False)  # already off: nothing to record
    changes = list(CreditsVisibilityChange.objects.values_list("enabled", "changed_by"))
    assert changes == [(False, sam.pk), (True, maria.pk)]

    page = as_maria.get(f"/membership/companies/{acme.pk}/members/").content.decode()
    newest = page.index("Turned <strong>off</strong> by Sam Okafor, ")
    assert "2 Jun 2026, 14:05" in page[newest:]
    assert newest < page.index("Turned <strong>on</strong> by Maria Garcia, ")
    assert "1 Jun 2026, 09:30" in page


def test_the_htmx_answer_shows_the_new_change_too():
    acme = CompanyFactory(name="Acme Ltd")
    maria = MembershipFactory(company=acme, role="manager", user__first_name="Maria").user
    client = Client()
    client.force_login(maria)
    response = client.post(
        f"/membership/companies/{acme.pk}/members/credits-visibility/",
        {"members_can_use_credits": "on"},
        headers={"HX-Request": "true"},
    )
    assert "Turned <strong>on</strong> by Maria" in response.content.decode()


def test_a_member_who_may_not_change_it_records_nothing_and_sees_no_history():
    acme = CompanyFactory(name="Acme Ltd")
    member = MembershipFactory(company=acme, role="member").user
    client = Client()
    client.force_login(member)
    assert switch(client, acme, True).status_code == 404
    assert client.get(f"/membership/companies/{acme.pk}/members/").status_code == 404
    assert not CreditsVisibilityChange.objects.exists()


def test_a_change_in_the_django_admin_is_recorded_too():
    acme = CompanyFactory(name="Acme Ltd")
    staff = StaffFactory(first_name="Ada")
    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="_company"))
    client = Client()
    client.force_login(staff)
    form = {
        "name": "Acme Ltd",
        "email": "",
        "members_can_use_credits": "on",
        "created_at_0": "2026-06-01",
        "created_at_1": "09:00:00",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    response = client.post(f"/admin/customers/company/{acme.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    (change,) = CreditsVisibilityChange.objects.all()
    assert change.enabled is True and change.changed_by == staff
    form["name"] = "Acme Limited"  # the switch unchanged: nothing more recorded
    client.post(f"/admin/customers/company/{acme.pk}/change/", form)
    assert CreditsVisibilityChange.objects.count() == 1
