"""People who cannot be told: inactive users are marked, and the Adjust balance dialog
warns when nobody will be notified of the change."""

import pytest

from tests.factories import CompanyFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

WARNING = 'id="adjust-nobody-told"'


def test_inactive_users_are_marked_in_the_list_and_on_their_profile(client, adjuster):
    gone = UserFactory(first_name="Tom", last_name="Gone", is_active=False)
    UserFactory(first_name="Lena", last_name="Here")
    listing = client.get("/customers/?q=Gone").content.decode()
    assert "Tom Gone" in listing and 'badge--inactive">Inactive<' in listing
    assert "badge--inactive" not in client.get("/customers/?q=Here").content.decode()
    profile = client.get(f"/customers/users/{gone.pk}/").content.decode()
    assert "Inactive" in profile
    assert "is not told of changes to these credits" in profile


def test_a_company_profile_says_when_nobody_is_told(client, adjuster):
    acme = CompanyFactory(name="Acme Ltd")
    manager = UserFactory(first_name="Maria", is_active=False)
    MembershipFactory(company=acme, user=manager, role="manager")
    MembershipFactory(company=acme, role="member")
    page = client.get(f"/customers/companies/{acme.pk}/").content.decode()
    assert "no active manager and no billing email, so nobody is told" in page
    assert "Inactive" in page  # beside Maria in the members
    manager.is_active = True
    manager.save()
    page = client.get(f"/customers/companies/{acme.pk}/").content.decode()
    assert "Its active managers" in page and "nobody is told" not in page


def test_the_adjust_dialog_warns_when_nobody_will_be_notified(client, adjuster):
    active = UserFactory(first_name="Lena", last_name="Here")
    inactive = UserFactory(first_name="Tom", last_name="Gone", is_active=False)
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, role="member")
    assert WARNING not in client.get(f"/customers/users/{active.pk}/adjust/").content.decode()
    page = client.get(f"/customers/users/{inactive.pk}/adjust/").content.decode()
    assert WARNING in page
    assert "Nobody will be notified: Tom Gone&#x27;s account is inactive" in page
    page = client.get(
        f"/customers/companies/{acme.pk}/adjust/", headers={"HX-Request": "true"}
    ).content.decode()
    assert "Nobody will be notified: Acme Ltd has no active manager" in page
    MembershipFactory(company=acme, role="manager")
    assert WARNING not in client.get(f"/customers/companies/{acme.pk}/adjust/").content.decode()


def test_the_members_page_marks_inactive_members(client):
    acme = CompanyFactory(name="Acme Ltd")
    manager = MembershipFactory(company=acme, role="manager").user
    MembershipFactory(company=acme, user=UserFactory(first_name="Tom", is_active=False))
    client.force_login(manager)
    page = client.get(f"/membership/companies/{acme.pk}/members/").content.decode()
    assert page.count("badge--inactive") == 1
