"""The member side shows each member only what is theirs; everything else is a 404 that
looks the same whether the thing exists or not."""

import datetime as dt
import re

import pytest
from django.test import Client

from credits import selectors, services
from customers.models import Company
from tests.factories import CompanyFactory, MembershipFactory, StaffFactory, UserFactory


@pytest.fixture
def world(db, clock):
    """Maria (member) and Tom (another member) with their own credits; Acme, where Maria
    manages and Lena is a plain member; Globex, where none of them belongs."""
    admin = StaffFactory(first_name="Ada", last_name="Admin")
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    tom = UserFactory(first_name="Tom", last_name="Becker")
    lena = UserFactory(first_name="Lena", last_name="Novak")
    acme = CompanyFactory(name="Acme Ltd")
    globex = CompanyFactory(name="Globex Corp")
    MembershipFactory(company=acme, user=maria, role="manager")
    MembershipFactory(company=acme, user=lena, role="member")
    MembershipFactory(company=globex, user=tom, role="manager")
    services.add_credits(
        maria, 20, expires_on=dt.date(2026, 12, 31), memo="Maria welcome", actor=admin
    )
    services.add_credits(maria, 5, memo="Maria forever")
    services.add_credits(tom, 7, memo="Tom secret memo", actor=admin)
    services.add_credits(acme, 100, memo="Acme monthly", actor=admin)
    services.add_credits(globex, 50, memo="Globex private", actor=admin)
    return {
        "admin": admin,
        "maria": maria,
        "tom": tom,
        "lena": lena,
        "acme": acme,
        "globex": globex,
    }


def as_member(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def user_urls(user):
    return [
        f"/membership/users/{user.pk}/transactions/",
        f"/membership/users/{user.pk}/transactions.csv",
    ]


def company_urls(company):
    return [
        f"/membership/companies/{company.pk}/transactions/",
        f"/membership/companies/{company.pk}/transactions.csv",
    ]


def without_csrf_tokens(text: str) -> str:
    # Each render masks the CSRF token afresh; everything else must be identical.
    text = re.sub(r'"x-csrftoken": "[^"]+"', "", text)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)


def body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


# Anonymous visitors


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_the_login_page(world):
    client = Client()
    urls = [
        "/membership/",
        "/account/",
        "/account/password/",
        f"/membership/companies/{world['acme'].pk}/members/",
        *user_urls(world["maria"]),
        *company_urls(world["acme"]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


@pytest.mark.django_db
def test_home_sends_members_to_membership(world):
    response = as_member(world["maria"]).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/membership/"


# Personal credits


@pytest.mark.django_db
def test_membership_page_shows_own_credits_and_expiration_details(world):
    response = as_member(world["maria"]).get("/membership/")
    page = body(response)
    assert response.status_code == 200
    assert "Personal" in page
    assert "25 <small>credits</small>" in page
    assert "20</strong> credits expire on 31 Dec 2026" in page
    assert "5</strong> credits never expire" in page
    assert "Maria welcome" in page
    # Acme: Maria manages it, so she sees its credits and its Members link.
    assert "Acme Ltd" in page and "Acme monthly" in page
    assert f"/membership/companies/{world['acme'].pk}/members/" in page
    # Nothing of anyone else's.
    for secret in ("Tom secret memo", "Globex", "Ada Admin"):
        assert secret not in page


@pytest.mark.django_db
def test_transactions_say_the_space_did_it_never_the_admins_name(world):
    client = as_member(world["maria"])
    page = body(client.get(f"/membership/users/{world['maria'].pk}/transactions/"))
    assert "Maria welcome" in page and "Maria forever" in page
    assert "The space" in page
    assert "Ada Admin" not in page
    csv_text = body(client.get(f"/membership/users/{world['maria'].pk}/transactions.csv"))
    assert "Maria welcome" in csv_text and "The space" in csv_text
    assert "Ada Admin" not in csv_text


@pytest.mark.django_db
def test_another_members_credits_are_404_and_look_like_nothing_there(world):
    client = as_member(world["maria"])
    missing_id = max(world["tom"].pk, world["lena"].pk) + 1000
    for url in user_urls(world["tom"]):
        response = client.get(url)
        missing = client.get(url.replace(f"/{world['tom'].pk}/", f"/{missing_id}/"))
        assert response.status_code == 404, url
        assert missing.status_code == 404
        assert without_csrf_tokens(body(response)) == without_csrf_tokens(body(missing))
        assert "Tom" not in body(response)


@pytest.mark.django_db
def test_filters_and_cursors_never_reach_other_customers_rows(world):
    client = as_member(world["maria"])
    tom_tx = selectors.get_transactions(world["tom"]).get()
    own = f"/membership/users/{world['maria'].pk}/transactions"
    tampered = [
        f"{own}/?user={world['tom'].pk}&company={world['globex'].pk}",
        f"{own}/?before={tom_tx.seq + 5}",
        f"{own}/?after=0&kind=admin_allocation",
        f"{own}.csv?user={world['tom'].pk}&customer=company-{world['globex'].pk}",
    ]
    for url in tampered:
        response = client.get(url)
        text = body(response)
        assert response.status_code == 200, url
        assert "Tom secret memo" not in text and "Globex private" not in text, url
        assert "Maria welcome" in text, url


@pytest.mark.django_db
def test_a_bad_filter_is_explained_and_shows_nothing_else(world):
    client = as_member(world["maria"])
    url = f"/membership/users/{world['maria'].pk}/transactions/"
    page = body(client.get(url, {"date_from": "2026-06-10", "date_to": "2026-06-01"}))
    assert "The end date must be on or after the start date." in page
    assert "Tom secret memo" not in page


# Company credits and their visibility


@pytest.mark.django_db
def test_company_credits_visibility_follows_the_managers_switch(world):
    lena, acme = world["lena"], world["acme"]
    client = as_member(lena)
    # Off (default): Lena is a plain member; the company's credits are a 404.
    for url in company_urls(acme):
        assert client.get(url).status_code == 404, url
    page = body(client.get("/membership/"))
    assert "Acme monthly" not in page
    assert "its managers have not shared" in page

    manager = as_member(world["maria"])
    response = manager.post(
        f"/membership/companies/{acme.pk}/members/credits-visibility/",
        {"members_can_use_credits": "on"},
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.members_can_use_credits is True

    page = body(client.get("/membership/"))
    assert "Acme Ltd" in page and "Acme monthly" in page
    for url in company_urls(acme):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Acme monthly" in body(response)
    # Still not who else is in it: that page is for managers.
    assert client.get(f"/membership/companies/{acme.pk}/members/").status_code == 404

    manager.post(f"/membership/companies/{acme.pk}/members/credits-visibility/", {})
    acme.refresh_from_db()
    assert acme.members_can_use_credits is False
    for url in company_urls(acme):
        assert client.get(url).status_code == 404, url


@pytest.mark.django_db
def test_other_companies_are_404_even_when_shared_with_their_members(world):
    globex = world["globex"]
    Company.objects.filter(pk=globex.pk).update(members_can_use_credits=True)
    client = as_member(world["maria"])
    missing_id = globex.pk + 1000
    for url in company_urls(globex) + [f"/membership/companies/{globex.pk}/members/"]:
        response = client.get(url)
        missing = client.get(url.replace(f"/{globex.pk}/", f"/{missing_id}/"))
        assert response.status_code == 404, url
        assert without_csrf_tokens(body(response)) == without_csrf_tokens(body(missing))
        assert "Globex" not in body(response)


@pytest.mark.django_db
def test_a_plain_member_cannot_flip_the_switch_and_nothing_changes(world):
    acme = world["acme"]
    response = as_member(world["lena"]).post(
        f"/membership/companies/{acme.pk}/members/credits-visibility/",
        {"members_can_use_credits": "on"},
    )
    assert response.status_code == 404
    acme.refresh_from_db()
    assert acme.members_can_use_credits is False
    # A manager of another company cannot either.
    response = as_member(world["tom"]).post(
        f"/membership/companies/{acme.pk}/members/credits-visibility/",
        {"members_can_use_credits": "on"},
    )
    assert response.status_code == 404
    acme.refresh_from_db()
    assert acme.members_can_use_credits is False


@pytest.mark.django_db
def test_the_service_refuses_a_non_manager_too(world):
    from django.core.exceptions import PermissionDenied

    from customers.services import set_members_can_use_credits

    with pytest.raises(PermissionDenied):
        set_members_can_use_credits(world["acme"], True, by=world["lena"])
    world["acme"].refresh_from_db()
    assert world["acme"].members_can_use_credits is False


@pytest.mark.django_db
def test_managers_see_who_is_in_the_company(world):
    acme = world["acme"]
    page = body(as_member(world["maria"]).get(f"/membership/companies/{acme.pk}/members/"))
    assert "Lena Novak" in page and "Maria Garcia" in page
    assert "Members can see and use company credits" in page
    assert "Tom Becker" not in page


@pytest.mark.django_db
def test_the_switch_needs_a_csrf_token(world):
    acme = world["acme"]
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["maria"])
    response = client.post(
        f"/membership/companies/{acme.pk}/members/credits-visibility/",
        {"members_can_use_credits": "on"},
    )
    assert response.status_code == 403
    acme.refresh_from_db()
    assert acme.members_can_use_credits is False


@pytest.mark.django_db
def test_the_switch_answers_htmx_in_place_with_a_confirmation(world):
    acme = world["acme"]
    response = as_member(world["maria"]).post(
        f"/membership/companies/{acme.pk}/members/credits-visibility/",
        {"members_can_use_credits": "on"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert 'id="credits-visibility"' in body(response)
    assert "<html" not in body(response)
    assert "can now see and use company credits" in response["HX-Trigger"]


# Staff on the member side


@pytest.mark.django_db
def test_staff_see_only_their_own_account_on_the_member_side(world):
    client = as_member(world["admin"])
    assert client.get("/membership/").status_code == 200
    assert client.get(f"/membership/users/{world['admin'].pk}/transactions/").status_code == 200
    for url in user_urls(world["maria"]) + company_urls(world["acme"]):
        assert client.get(url).status_code == 404, url
    page = body(client.get("/membership/"))
    assert "Maria welcome" not in page and "Acme monthly" not in page


# Account


@pytest.mark.django_db
def test_profile_name_change(world):
    client = as_member(world["lena"])
    response = client.post(
        "/account/",
        {"first_name": "Lena", "last_name": "Novak-Smith", "email": world["lena"].email},
    )
    assert response.status_code == 302
    world["lena"].refresh_from_db()
    assert world["lena"].last_name == "Novak-Smith"


@pytest.mark.django_db
def test_changing_the_login_email_needs_the_password(world):
    from tests.factories import PASSWORD

    lena = world["lena"]
    client = as_member(lena)
    data = {"first_name": "Lena", "last_name": "Novak", "email": "lena.new@example.com"}
    response = client.post("/account/", data)
    assert response.status_code == 422
    assert "Enter your current password to change your email address." in body(response)
    lena.refresh_from_db()
    assert lena.email != "lena.new@example.com"

    response = client.post(
        "/account/", {**data, "email": world["tom"].email.upper(), "current_password": PASSWORD}
    )
    assert response.status_code == 422
    assert "Another account already uses this email address." in body(response)

    response = client.post("/account/", {**data, "current_password": PASSWORD})
    assert response.status_code == 302
    lena.refresh_from_db()
    assert lena.email == "lena.new@example.com"


@pytest.mark.django_db
def test_password_change_keeps_the_member_logged_in(world):
    from tests.factories import PASSWORD

    client = as_member(world["lena"])
    response = client.post(
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-longer-new-secret",
            "new_password2": "a-much-longer-new-secret",
        },
    )
    assert response.status_code == 302
    assert client.get("/membership/").status_code == 200
    world["lena"].refresh_from_db()
    assert world["lena"].check_password("a-much-longer-new-secret")


@pytest.mark.django_db
def test_account_page_links_to_notifications(world):
    page = body(as_member(world["lena"]).get("/account/"))
    assert 'href="/notifications/"' in page
    assert 'href="/notifications/preferences/"' in page
