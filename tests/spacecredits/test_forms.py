"""Every form of the app renders through one field template (templates/forms/field.html):
the form's class is the only place its rules are written, and what a control says it is
described by (help text, errors) is on the page."""

import re

import pytest
from django.urls import reverse

from credits import services
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def described_by_ids_exist(html: str) -> list[str]:
    """The aria-describedby ids of the page; fails on one that names no element."""
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    described = [i for v in re.findall(r'aria-describedby="([^"]*)"', html) for i in v.split()]
    assert described, "no control is described by anything"
    assert [i for i in described if i not in ids] == []
    return described


def test_the_adjust_dialog_takes_its_rules_from_the_form(client, adjuster, clock):
    maria = UserFactory()
    services.add_credits(maria, 10)
    url = reverse("credits:adjust", args=["users", maria.pk])
    response = client.post(
        url,
        {"kind": "deduct", "expiry": "never", "amount": "11", "memo": "", "idempotency_key": "k"},
        headers=HTMX,
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "id_amount_error" in described_by_ids_exist(html)
    assert "id_memo_helptext" in described_by_ids_exist(html)
    # A text field with a "credits" unit (no spinner); the server checks the number.
    amount = re.search(r'<input type="text" name="amount"[^>]*>', html).group()
    assert 'inputmode="decimal"' in amount and "required" in amount
    assert '<span class="input-unit__text">credits</span>' in html
    assert 'maxlength="500"' in re.search(r"<textarea[^>]*>", html).group()
    assert "Optional. The customer sees it." in html
    # "Never" is chosen when the dialog opens; the Django admin page leaves it unchecked.
    blank = client.get(url, headers=HTMX).content.decode()
    assert re.search(r'value="never"[^>]*checked', blank)


def test_the_member_forms_describe_their_controls_with_ids_that_exist(client, clock):
    maria = UserFactory(password=PASSWORD)
    acme = CompanyFactory()
    MembershipFactory(company=acme, user=maria, role="manager")
    client.force_login(maria)
    account = client.post(reverse("member:account"), {"email": "new@example.com"})
    assert "id_current_password_error" in described_by_ids_exist(account.content.decode())
    password = client.post(reverse("member:password-change"), {})
    described_by_ids_exist(password.content.decode())
    preferences = client.get(reverse("notifications:preferences")).content.decode()
    assert "id_email_credit_updates_helptext" in described_by_ids_exist(preferences)
    members = client.get(reverse("member:company-members", args=[acme.pk])).content.decode()
    assert "id_members_can_use_credits_helptext" in described_by_ids_exist(members)
    transactions = client.get(
        reverse("member:transactions", args=["users", maria.pk]),
        {"date_from": "2026-06-05", "date_to": "2026-06-01"},
    ).content.decode()
    assert "id_date_to_error" in described_by_ids_exist(transactions)


def test_the_login_form_is_rendered_by_the_same_template(client):
    html = client.post(reverse("login"), {"username": "", "password": ""}).content.decode()
    assert "id_username_error" in described_by_ids_exist(html)
    username = re.search(r'<input[^>]*name="username"[^>]*>', html).group()
    assert 'type="email"' in username and 'autocomplete="email"' in username
