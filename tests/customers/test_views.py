import datetime as dt

import pytest
from django.urls import reverse

from credits import services
from tests.factories import CompanyFactory, MembershipFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    viewer = StaffFactory(first_name="Vic", last_name="Viewer")
    client.force_login(viewer)
    return viewer


def test_anonymous_visitors_are_sent_to_log_in(client):
    member = UserFactory()
    for url in [reverse("customers:list"), member.get_absolute_url()]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_members_who_are_not_staff_never_reach_the_customers_pages(client):
    member = UserFactory()
    company = CompanyFactory()
    MembershipFactory(company=company, user=member, role="manager")
    client.force_login(member)
    for url in [
        reverse("customers:list"),
        member.get_absolute_url(),
        company.get_absolute_url(),
    ]:
        assert client.get(url).status_code == 403
    # Their home is the Membership page, not the staff one.
    assert client.get("/")["Location"] == reverse("member:membership")


def test_staff_land_on_the_customers_page(client, staff):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:list")


def test_search_finds_users_by_name_or_email_and_keeps_the_query(client, staff, clock):
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    UserFactory(first_name="Tom", last_name="Becker", email="tom@example.com")
    services.add_credits(maria, "12.5")

    page = client.get(reverse("customers:list"), {"q": "maria garc"}).content.decode()
    assert "Maria Garcia" in page and "Tom Becker" not in page
    assert 'value="maria garc"' in page  # the box keeps the query on reload
    assert "12.50" in page  # balance column

    by_email = client.get(reverse("customers:list"), {"q": "tom@"}).content.decode()
    assert "Tom Becker" in by_email and "Maria Garcia" not in by_email

    nobody = client.get(reverse("customers:list"), {"q": "zzz"}).content.decode()
    assert "No users match “zzz”." in nobody


def test_htmx_search_returns_only_the_results(client, staff):
    UserFactory(first_name="Maria", last_name="Garcia")
    response = client.get(
        reverse("customers:list"),
        {"q": "maria"},
        headers={"HX-Request": "true", "HX-Target": "customer-results"},
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="customer-results">')
    assert "<html" not in body and "Maria Garcia" in body
    assert "HX-Target" in response["Vary"]


def test_companies_tab_lists_companies_with_their_balance(client, staff, clock):
    acme = CompanyFactory(name="Acme Ltd")
    CompanyFactory(name="Northwind Studio")
    services.add_credits(acme, 200)
    page = client.get(reverse("customers:list"), {"tab": "companies", "q": "acme"})
    body = page.content.decode()
    assert "Acme Ltd" in body and "Northwind Studio" not in body
    assert ">200<" in body


def test_customers_list_queries_do_not_grow_with_rows(
    client, staff, clock, django_assert_max_num_queries
):
    def make_customers(count):
        for _ in range(count):
            services.add_credits(UserFactory(), 5)
            services.add_credits(CompanyFactory(), 5)

    make_customers(2)
    # 6, and one for the permission that shows "Grant to many".
    with django_assert_max_num_queries(7):
        client.get(reverse("customers:list"))
    with django_assert_max_num_queries(7):
        client.get(reverse("customers:list"), {"tab": "companies"})
    make_customers(23)
    with django_assert_max_num_queries(7):
        page = client.get(reverse("customers:list"))
    assert page.content.decode().count('class="row-link"') == 25
    with django_assert_max_num_queries(7):
        client.get(reverse("customers:list"), {"tab": "companies"})


def test_pagination_splits_long_lists(client, staff):
    for index in range(30):
        UserFactory(first_name=f"Person{index:02}")
    first = client.get(reverse("customers:list")).content.decode()
    second = client.get(reverse("customers:list"), {"page": 2}).content.decode()
    assert "Page 1 of 2" in first and "Next →" in first
    assert "Page 2 of 2" in second and "← Previous" in second


def test_user_profile_shows_balance_expiration_details_and_companies(client, adjuster, clock):
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=maria, role="manager")
    services.add_credits(maria, 12, expires_on=dt.date(2026, 12, 31))
    services.add_credits(maria, 5)

    body = client.get(maria.get_absolute_url()).content.decode()
    assert "17 <small>credits</small>" in body
    assert "12 credits expire on 31 Dec 2026" in body
    assert "5 credits never expire" in body
    assert "Acme Ltd" in body and "Manager" in body
    assert "Adjust balance" in body
    assert "View transactions" in body
    assert "<svg" in body and "Balance over the last 90 days" in body


def test_company_profile_lists_members_and_roles(client, staff):
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=UserFactory(first_name="Maria"), role="manager")
    MembershipFactory(company=acme, user=UserFactory(first_name="Tom"), role="member")
    body = client.get(acme.get_absolute_url()).content.decode()
    assert "Members" in body
    assert body.count("badge--role") == 2 and "Manager" in body and "Member<" in body


def test_a_large_company_shows_its_managers_first_and_the_rest_on_request(client, staff):
    acme = CompanyFactory(name="Acme Ltd")
    for number in range(14):
        MembershipFactory(company=acme, user=UserFactory(first_name=f"Member{number:02}"))
    MembershipFactory(company=acme, user=UserFactory(first_name="Zoe"), role="manager")

    body = client.get(acme.get_absolute_url()).content.decode()
    assert body.count("badge--role") == 12
    assert body.index("Zoe") < body.index("Member00")  # managers first
    assert "Member10" in body and "Member11" not in body
    assert "Show all 15 members" in body

    everyone = client.get(acme.get_absolute_url(), {"members": "all"}).content.decode()
    assert everyone.count("badge--role") == 15 and "Member13" in everyone
    assert "Show all" not in everyone


def test_staff_without_the_permission_see_no_adjust_button(client, staff):
    maria = UserFactory()
    body = client.get(maria.get_absolute_url()).content.decode()
    assert "Adjust balance" not in body
    assert "View transactions" in body


def test_credit_balance_section_refreshes_as_a_partial(client, staff, clock):
    maria = UserFactory()
    services.add_credits(maria, 7)
    response = client.get(
        maria.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "credit-balance"}
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="credit-balance"')
    assert "7 <small>credits</small>" in body and "Recent transactions" not in body


def test_unknown_customer_is_404(client, staff):
    assert client.get("/customers/users/999999/").status_code == 404
    assert client.get("/customers/companies/999999/").status_code == 404
