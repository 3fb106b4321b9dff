"""The admin's day with credits, in a real browser: find a customer, adjust the balance in
the dialog, read and export the transactions; a viewer without the permission cannot."""

import csv
import datetime as dt
import io
import re
from unittest import mock

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from credits import selectors, services
from customers.models import User
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, StaffFactory, UserFactory


def _date_words(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


@pytest.mark.django_db(transaction=True)
def test_admin_adjusts_a_balance_and_reads_the_transactions(page, login, screenshot):
    admin = User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    for first, last in [("Tom", "Becker"), ("Lena", "Novak"), ("Sam", "Okafor")]:
        UserFactory(first_name=first, last_name=last)
    acme = CompanyFactory(name="Acme Ltd", email="billing@acme.example")
    MembershipFactory(company=acme, user=maria, role="manager")
    # The company has a few months of history, so its balance chart has a shape.
    now = timezone.now()
    for days_ago, amount, memo in [
        (80, 200, "Company plan top-up"),
        (60, -35, "Board room"),
        (20, 40, "Event compensation"),
        (5, -22, "Meeting room"),
    ]:
        with mock.patch.object(timezone, "now", return_value=now - dt.timedelta(days=days_ago)):
            kind = "add" if amount > 0 else "deduct"
            services.adjust_balance(acme, kind=kind, amount=abs(amount), memo=memo, actor=admin)
    next_month = timezone.localdate(timezone.now()) + dt.timedelta(days=31)

    login(admin.email, PASSWORD)
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()

    # Find Maria by search: the list narrows as the admin types and the URL keeps the query.
    page.get_by_role("searchbox", name="Search customers").fill("garc")
    expect(page.get_by_role("link", name="Tom Becker")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"q=garc"))
    screenshot("customers-list")
    page.get_by_role("link", name="Maria Garcia").click()
    expect(page.get_by_role("heading", name="Maria Garcia")).to_be_visible()
    balance_section = page.get_by_role("region", name="Credit balance")
    page.evaluate("window.notReloaded = true")

    def adjust(kind, amount, *, memo="", expires_on=None):
        page.get_by_role("button", name="Adjust balance").click()
        dialog = page.get_by_role("dialog", name="Adjust balance")
        expect(dialog).to_be_visible()
        dialog.get_by_role("radio", name=kind).check()
        if kind == "Add":
            if expires_on is None:
                dialog.get_by_role("radio", name="Never").check()
            else:
                dialog.get_by_role("radio", name="On a date").check()
                dialog.get_by_label("Expiration date").fill(expires_on.isoformat())
        else:
            expect(dialog.get_by_role("group", name="Expiration")).to_be_hidden()
        dialog.get_by_label("Amount").fill(str(amount))
        dialog.get_by_label("Memo").fill(memo)
        # The button says what it does.
        dialog.get_by_role("button", name=f"{kind} {amount} credits").click()
        return dialog

    dialog = adjust("Add", 25, memo="Welcome bonus")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status").filter(has_text="Added 25 credits")).to_be_visible()
    expect(balance_section).to_contain_text("25 credits never expire")

    dialog = adjust("Add", 10, memo="Event credits", expires_on=next_month)
    expect(dialog).to_be_hidden()
    expect(balance_section.get_by_test_id("balance")).to_have_text("35 credits")
    expect(balance_section).to_contain_text(f"10 credits expire on {_date_words(next_month)}")
    expect(balance_section).to_contain_text("25 credits never expire")

    # More than the balance: the message sits next to Amount and nothing changes.
    dialog = adjust("Deduct", 100, memo="Too much")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("Only 35 credits are available.")).to_be_visible()
    expect(dialog.get_by_label("Amount")).to_have_attribute("aria-invalid", "true")
    screenshot("adjust-dialog-error", full_page=False)
    dialog.get_by_label("Amount").fill("5")
    dialog.get_by_label("Memo").fill("Printing")
    dialog.get_by_role("button", name="Deduct 5 credits").click()
    expect(dialog).to_be_hidden()
    expect(balance_section.get_by_test_id("balance")).to_have_text("30 credits")
    expect(balance_section).to_contain_text(f"5 credits expire on {_date_words(next_month)}")
    recent = page.get_by_role("region", name="Recent transactions")
    expect(recent.get_by_role("row")).to_have_count(4)  # header + 3 adjustments
    assert page.evaluate("window.notReloaded") is True  # all of it without a reload
    assert selectors.get_balance(maria) == 30
    page.locator("#toasts").evaluate("toasts => toasts.replaceChildren()")
    page.locator(".just-changed").evaluate_all(
        "rows => rows.forEach(row => row.classList.remove('just-changed'))"
    )
    screenshot("user-profile")

    # View transactions from the "..." menu, filter by type, export CSV.
    balance_section.get_by_label("More actions").click()
    page.get_by_role("link", name="View transactions").click()
    expect(page.get_by_role("heading", name="Transactions")).to_be_visible()
    table = page.get_by_role("table", name="Credit transactions, newest first")
    expect(table.get_by_role("row")).to_have_count(4)
    page.get_by_label("Type").select_option(label="Deducted by admin")
    expect(table.get_by_role("row")).to_have_count(2)
    expect(table).to_contain_text("Printing")
    expect(page).to_have_url(re.compile(r"kind=admin_charge"))
    screenshot("transactions")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    exported = list(csv.reader(io.StringIO(open(download_info.value.path()).read())))
    assert exported[0][:7] == [
        "Date",
        "Type",
        "Memo",
        "Amount",
        "Balance after",
        "Expires on",
        "By",
    ]
    assert [row[1:5] for row in exported[1:]] == [
        ["Deducted by admin", "Printing", "-5.00", "30.00"]
    ]

    # The company's profile lists its members and their roles.
    page.goto(acme.get_absolute_url())
    expect(page.get_by_role("heading", name="Acme Ltd")).to_be_visible()
    members = page.get_by_role("region", name="Members")
    expect(members.get_by_role("listitem").filter(has_text="Maria Garcia")).to_contain_text(
        "Manager"
    )
    screenshot("company-profile")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(maria.get_absolute_url())
    expect(page.get_by_role("region", name="Credit balance")).to_contain_text("30 credits")
    screenshot("user-profile-phone")


@pytest.mark.django_db(transaction=True)
def test_staff_without_the_permission_sees_no_button_and_cannot_post(page, login):
    viewer = StaffFactory(first_name="Vic", last_name="Viewer")
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    services.add_credits(maria, 20, memo="Welcome bonus")

    login(viewer.email, PASSWORD)
    page.get_by_role("link", name="Maria Garcia").click()
    balance_section = page.get_by_role("region", name="Credit balance")
    expect(balance_section.get_by_test_id("balance")).to_have_text("20 credits")
    expect(page.get_by_role("button", name="Adjust balance")).to_have_count(0)

    csrf_token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forged = page.request.post(
        f"/customers/users/{maria.pk}/adjust/",
        form={"kind": "add", "expiry": "never", "amount": "1000", "idempotency_key": "forged"},
        headers={"X-CSRFToken": csrf_token, "Referer": page.url},
    )
    assert forged.status == 403
    page.reload()
    expect(balance_section.get_by_test_id("balance")).to_have_text("20 credits")
    assert selectors.get_balance(maria) == 20


@pytest.mark.django_db(transaction=True)
def test_without_javascript_the_adjust_form_works_with_page_loads(browser, live_server):
    admin = User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    try:
        page.goto("/login/")
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(maria.get_absolute_url())
        page.get_by_role("button", name="Adjust balance").click()
        expect(page.get_by_role("heading", name="Adjust balance")).to_be_visible()
        page.get_by_label("Amount").fill("-3")
        # Without JavaScript the button's words do not follow the typing.
        page.get_by_role("button", name="Add credits").click()
        expect(page.get_by_text("Enter an amount greater than 0.")).to_be_visible()
        page.get_by_label("Amount").fill("12")
        page.get_by_label("Memo").fill("Welcome bonus")
        page.get_by_role("button", name="Add credits").click()
        expect(page.get_by_role("heading", name="Maria Garcia")).to_be_visible()
        expect(page.get_by_text("Added 12 credits to Maria Garcia's balance.")).to_be_visible()
        balance = page.get_by_role("region", name="Credit balance")
        expect(balance.get_by_test_id("balance")).to_have_text("12 credits")
        expect(balance).to_contain_text("12 credits never expire")
    finally:
        context.close()
