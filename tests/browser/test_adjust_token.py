"""A bad one-time key on the Adjust balance dialog is said in the dialog, and saving
again works (the server-side cases, and the no-JS page: tests/credits/
test_input_text_and_digits.py)."""

import pytest
from playwright.sync_api import expect

from credits import selectors
from customers.models import User
from tests.factories import PASSWORD, UserFactory


@pytest.mark.django_db(transaction=True)
def test_the_dialog_says_the_key_was_bad_and_saves_on_the_second_try(page, login):
    admin = User.objects.create_superuser(email="ada@example.com", password=PASSWORD)
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    login(admin.email, PASSWORD)
    page.goto(maria.get_absolute_url())
    page.get_by_role("button", name="Adjust balance").click()
    dialog = page.get_by_role("dialog", name="Adjust balance")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Amount").fill("7")
    # What a stale or tampered form sends.
    dialog.locator('input[name="idempotency_key"]').evaluate("input => input.value = ''")
    dialog.get_by_role("button", name="Add 7 credits").click()

    expect(dialog.get_by_role("alert")).to_contain_text(
        "The one-time key of this form is missing or not valid, so nothing was saved."
    )
    expect(dialog.get_by_label("Amount")).to_have_value("7")
    assert selectors.get_balance(maria) == 0
    dialog.get_by_role("button", name="Add 7 credits").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status").filter(has_text="Added 7 credits")).to_be_visible()
    assert selectors.get_balance(maria) == 7
