"""The transaction filters and the words of the same actions on staff and member pages
(issue 15, items 4 and 7)."""

import os
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from credits import services
from credits.forms import AdjustBalanceForm
from customers.models import User
from spacecredits.formats import credits_number
from tests.factories import PASSWORD, UserFactory

APP_JS = os.path.join(os.path.dirname(__file__), "..", "..", "static", "js", "app.js")


@pytest.fixture
def admin(db):
    return User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )


@pytest.fixture
def maria(db):
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    services.add_credits(maria, 20, memo="Welcome bonus")
    services.deduct_credits(maria, 5, memo="Printing")
    return maria


@pytest.mark.django_db(transaction=True)
def test_arrowing_through_the_type_filter_sends_one_request(page, login, admin, maria):
    login(admin.email, PASSWORD)
    page.goto(f"/customers/users/{maria.pk}/transactions/")
    requests = []
    page.on(
        "request",
        lambda request: (
            requests.append(request.url)
            if request.headers.get("hx-request") and "/transactions/" in request.url
            else None
        ),
    )
    page.get_by_label("Type").focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    page.wait_for_timeout(1500)
    assert len(requests) == 1, requests
    # The list shows the type the keys stopped at.
    chosen = page.get_by_label("Type").evaluate("select => select.value")
    assert f"kind={chosen}" in requests[0]


@pytest.mark.django_db(transaction=True)
def test_the_same_actions_have_the_same_words_for_staff_and_members(page, login, admin, maria):
    pages = {
        "staff": (admin.email, f"/customers/users/{maria.pk}/transactions/"),
        "member": (maria.email, f"/membership/users/{maria.pk}/transactions/"),
    }
    for who, (email, url) in pages.items():
        login(email, PASSWORD)
        page.goto(url)
        expect(page.get_by_role("button", name="Apply filters")).to_be_visible()
        expect(page.get_by_role("link", name="Download CSV")).to_be_visible()
        expect(page.get_by_role("link", name="Clear filters")).to_be_visible()
        for old in ["Filter", "Clear", "Export CSV"]:
            assert page.get_by_role("main").get_by_text(old, exact=True).count() == 0, who
        page.context.clear_cookies()


@pytest.mark.django_db(transaction=True)
def test_the_adjust_button_says_what_it_does_as_one_types(page, login, admin, maria):
    login(admin.email, PASSWORD)
    page.goto(maria.get_absolute_url())
    page.get_by_role("button", name="Adjust balance").click()
    dialog = page.get_by_role("dialog", name="Adjust balance")
    amount = dialog.get_by_label("Amount")
    # A text field with its unit: no spinner, and the scroll wheel leaves it alone.
    assert amount.get_attribute("type") == "text"
    assert amount.get_attribute("inputmode") == "decimal"
    expect(dialog.locator(".input-unit")).to_contain_text("credits")
    preview = dialog.locator("[data-adjust-preview]")
    expect(dialog.get_by_role("button", name="Add credits")).to_be_visible()
    expect(preview.locator("strong")).to_have_text(["15", "15"])  # before, after
    expect(preview.locator("[data-balance-warning]")).to_be_hidden()

    amount.press_sequentially("10")
    expect(dialog.get_by_role("button", name="Add 10 credits")).to_be_visible()
    expect(preview).to_contain_text("25 credits")
    amount.fill("1")
    expect(dialog.get_by_role("button", name="Add 1 credit", exact=True)).to_be_visible()
    dialog.get_by_role("radio", name="Deduct").check()
    amount.fill("1000.5")
    expect(dialog.get_by_role("button", name="Deduct 1,000.50 credits")).to_be_visible()
    expect(preview).to_contain_text("-985.50 credits: more than the balance")
    amount.fill("ten")
    expect(dialog.get_by_role("button", name="Deduct credits")).to_be_visible()
    expect(preview.locator("[data-balance-warning]")).to_be_hidden()

    # The server checks what the browser let through, and says it beside the field.
    dialog.get_by_role("button", name="Deduct credits").click()
    expect(dialog.get_by_text("Enter the amount as a number.")).to_be_visible()
    amount.fill("2.5")
    dialog.get_by_role("button", name="Deduct 2.50 credits").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("balance")).to_have_text("12.50 credits")


@pytest.mark.parametrize(
    "kind, typed",
    [("add", "10"), ("add", "1"), ("deduct", "2.5"), ("add", "1234.56"), ("add", "x")],
)
def test_the_dialog_script_and_the_form_say_the_same(page, kind, typed):
    """static/js/app.js repeats AdjustBalanceForm.submit_label and balance_after."""
    form = AdjustBalanceForm({"kind": kind, "amount": typed})
    page.set_content(
        f'''<form data-balance="20.00"><input type="radio" name="kind" value="{kind}" checked>
        <input name="amount" value="{typed}"><span data-submit-label></span>
        <strong data-balance-after></strong><span data-balance-warning></span></form>'''
    )
    page.add_script_tag(path=APP_JS)
    assert page.locator("[data-submit-label]").inner_text() == form.submit_label()
    after = credits_number(form.balance_after(Decimal("20.00")))
    assert page.locator("[data-balance-after]").inner_text() == after
