"""Memos refuse bidi and control characters; amounts are ASCII digits; a bad one-time
form token is explained, not a silent 422."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from credits import selectors, services
from credits.forms import AdjustBalanceForm
from credits.models import CreditTransaction
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ASCII_DIGITS = "Enter the amount with the digits 0 to 9 only."
TOKEN_EXPIRED = (
    "The one-time key of this form is missing or not valid, so nothing was saved. "
    "Check the values and save again."
)
HTMX = {"HX-Request": "true", "HX-Target": "adjust-dialog-body"}


@pytest.fixture
def maria(clock):
    maria = UserFactory(first_name="Maria")
    services.add_credits(maria, 10, memo="Welcome bonus")
    return maria


# --- Memos ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "memo, message",
    [
        ("Refund \u202egnp.exe", "Remove the invisible character U+202E (RIGHT-TO-LEFT OVERRIDE)."),
        ("Refund \u2067x", "Remove the invisible character U+2067 (RIGHT-TO-LEFT ISOLATE)."),
        ("Refund\x1b[31m", "Remove the control character U+001B."),
        ("Refund\x00", "Remove the control character U+0000."),
        ("Refund\u2028later", "Remove the invisible character U+2028 (LINE SEPARATOR)."),
    ],
)
@pytest.mark.parametrize("service", [services.add_credits, services.deduct_credits])
def test_a_memo_with_a_bidi_or_control_character_is_refused(maria, service, memo, message):
    with pytest.raises(ValidationError) as refused:
        service(maria, 1, memo=memo)
    assert refused.value.message_dict == {"memo": [message]}
    assert CreditTransaction.objects.count() == 1


def test_a_memo_keeps_its_lines_and_tabs(maria):
    recorded = services.add_credits(maria, 1, memo="Event:\r\n\tbadge printing\nthanks")
    assert recorded.memo == "Event:\r\n\tbadge printing\nthanks"


def test_the_adjust_form_shows_the_memo_message(client, adjuster, maria):
    response = client.post(
        reverse("credits:adjust", args=["users", maria.pk]),
        {"kind": "add", "amount": "5", "memo": "a\u202eb", "idempotency_key": "k1"},
        headers=HTMX,
    )
    assert response.status_code == 422
    assert "Remove the invisible character U+202E" in response.content.decode()
    assert selectors.get_balance(maria) == 10


# --- Amounts ----------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["١٠", "５", "1٠", "۱۰", "१०", "\u00a010", "10\u200f"])
def test_an_amount_in_other_digits_is_refused_by_the_services(maria, amount):
    for service in (services.add_credits, services.deduct_credits):
        with pytest.raises(ValidationError) as refused:
            service(maria, amount)
        assert refused.value.message_dict == {"amount": [ASCII_DIGITS]}
    assert CreditTransaction.objects.count() == 1
    assert selectors.get_balance(maria) == 10


@pytest.mark.parametrize("amount", ["١٠", "５"])
def test_an_amount_in_other_digits_is_refused_by_the_form(amount):
    form = AdjustBalanceForm({"kind": "add", "amount": amount, "idempotency_key": "k"})
    assert form.errors == {"amount": [ASCII_DIGITS]}


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["dialog", "no-js page"])
@pytest.mark.parametrize("amount", ["١٠", "５"])
def test_the_adjust_form_says_so_and_writes_nothing(client, adjuster, maria, amount, headers):
    response = client.post(
        reverse("credits:adjust", args=["users", maria.pk]),
        {"kind": "add", "expiry": "never", "amount": amount, "idempotency_key": "k1"},
        headers=headers,
    )
    assert response.status_code == 422
    assert ASCII_DIGITS in response.content.decode()
    assert selectors.get_balance(maria) == 10
    assert CreditTransaction.objects.count() == 1


def test_ascii_amounts_still_work(maria):
    assert services.add_credits(maria, " 2.50 ").amount == 2.5


# --- The one-time form token --------------------------------------------------------------


def _key_in(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]*)"', html).group(1)


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["dialog", "no-js page"])
@pytest.mark.parametrize("key", [None, "", "   ", "k" * 101, "k\x00"], ids=repr)
def test_a_bad_or_missing_token_is_explained_and_a_fresh_one_given(
    client, adjuster, maria, headers, key
):
    url = reverse("credits:adjust", args=["users", maria.pk])
    data = {"kind": "add", "expiry": "never", "amount": "5"}
    if key is not None:
        data["idempotency_key"] = key
    response = client.post(url, data, headers=headers)
    assert response.status_code == 422
    html = response.content.decode()
    assert TOKEN_EXPIRED in html
    assert 'role="alert"' in html
    assert selectors.get_balance(maria) == 10
    # The values stay; saving again (the fresh token) records it once.
    fresh = _key_in(html)
    assert fresh and fresh != key
    assert client.post(url, {**data, "idempotency_key": fresh}, headers=headers).status_code in (
        204,
        302,
    )
    assert selectors.get_balance(maria) == 15


def test_the_django_admin_page_shows_the_token_message_too(client, maria):
    from customers.models import User

    client.force_login(User.objects.create_superuser(email="root@example.com", password="x"))
    url = reverse("admin:customers_user_adjust_credits", args=[maria.pk])
    response = client.post(url, {"kind": "add", "amount": "5", "idempotency_key": ""})
    assert response.status_code == 422
    assert TOKEN_EXPIRED in response.content.decode()
