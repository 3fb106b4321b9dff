"""The other verbs in a real browser: an admin reverses a deduction from its row (the
dialog says what will happen) and transfers credits from the Credit balance menu; the
Credit balance shows what is held; the history links each row to its relation."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from credits import services
from customers.models import User
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, UserFactory


def _date_words(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


@pytest.mark.django_db(transaction=True)
def test_admin_reverses_a_deduction_and_transfers_credits(page, login, screenshot):
    admin = User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )
    tom = UserFactory(first_name="Tom", last_name="Becker", email="tom@example.com")
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=tom, role="manager")
    soon = timezone.localdate(timezone.now()) + dt.timedelta(days=20)
    services.add_credits(tom, 5, expires_on=soon, memo="Event credits", actor=admin)
    services.add_credits(tom, 3, memo="Welcome", actor=admin)
    services.deduct_credits(tom, 6, memo="Charged twice by mistake", actor=admin)
    services.hold_credits(
        tom, 1, expires_at=timezone.now() + dt.timedelta(days=2), memo="Desk, Friday"
    )

    login(admin.email, PASSWORD)
    page.goto(tom.get_absolute_url())
    balance = page.get_by_role("region", name="Credit balance")
    expect(balance.get_by_test_id("held-available")).to_have_text("1 held · 1 available")
    expect(balance.get_by_role("list", name="Holds")).to_contain_text("Desk, Friday")
    page.evaluate("window.notReloaded = true")

    # Reverse: only rows that can be reversed offer it; the dialog says what will happen.
    recent = page.get_by_role("region", name="Recent transactions")
    recent.get_by_role("link", name="Reverse the deduction").click()
    dialog = page.get_by_role("dialog", name="Reverse this deduction?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("what-happens")).to_have_text(
        f"Returns 6 credits: 5 to credits expiring {_date_words(soon)},"
        " 1 to credits that never expire."
    )
    dialog.get_by_label("Memo").fill("Charged twice")
    screenshot("reverse-dialog", full_page=False)
    dialog.get_by_role("button", name="Reverse").click()
    expect(dialog).to_be_hidden()
    expect(
        page.get_by_role("status").filter(has_text="Reversed: returned 6 credits")
    ).to_be_visible()
    expect(balance.get_by_test_id("balance")).to_have_text("8 credits")
    expect(balance).to_contain_text(f"5 credits expire on {_date_words(soon)}")
    expect(recent).to_contain_text("Reversed by the reversal of")
    expect(recent.get_by_role("link", name="Reverse the deduction")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True  # the page updated in place

    # Transfer credits, from the "..." menu: more than is available is refused beside
    # the amount; then 5 go to Acme Ltd, keeping their expiration date.
    balance.get_by_label("More actions").click()
    balance.get_by_role("link", name="Transfer credits").click()
    dialog = page.get_by_role("dialog", name="Transfer credits")
    expect(dialog).to_be_visible()
    dialog.get_by_role("radio", name="From this customer").check()
    dialog.get_by_label("Other customer").select_option(label="Acme Ltd")
    dialog.get_by_label("Amount").fill("8")
    dialog.get_by_role("button", name="Transfer").click()
    expect(dialog.get_by_text("Only 7 credits are available.")).to_be_visible()
    dialog.get_by_label("Amount").fill("5")
    dialog.get_by_label("Memo").fill("For the team")
    screenshot("transfer-dialog", full_page=False)
    dialog.get_by_role("button", name="Transfer").click()
    expect(dialog).to_be_hidden()
    expect(balance.get_by_test_id("balance")).to_have_text("3 credits")
    expect(recent).to_contain_text("Transfer to Acme Ltd")
    screenshot("profile-after-verbs")

    # The link of the transfer leads to Acme Ltd's side of it.
    recent.get_by_role("link", name="Transfer to Acme Ltd").click()
    expect(page.get_by_role("heading", name="Transactions")).to_be_visible()
    expect(page.get_by_text("Acme Ltd · newest first")).to_be_visible()
    table = page.get_by_role("table", name="Credit transactions, newest first")
    expect(table).to_contain_text("Transfer from Tom Becker")
    table.get_by_text("Credits received").click()  # a <details>: which dates came in
    expect(table).to_contain_text(f"5 to credits expiring {_date_words(soon)}")
    screenshot("transactions-with-relations")
    page.goto(acme.get_absolute_url())
    expect(page.get_by_role("region", name="Credit balance")).to_contain_text(
        f"5 credits expire on {_date_words(soon)}"
    )


@pytest.mark.django_db(transaction=True)
def test_reverse_works_without_javascript(browser, live_server):
    admin = User.objects.create_superuser(email="ada@example.com", password=PASSWORD)
    tom = UserFactory(first_name="Tom", last_name="Becker")
    services.add_credits(tom, 25, memo="Typed 25 for 2.5", actor=admin)
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(tom.get_absolute_url())
    page.get_by_role("link", name="Reverse the addition").click()
    expect(
        page.get_by_text("Takes back the 25 credits that remain of this addition.")
    ).to_be_visible()
    page.get_by_role("button", name="Reverse").click()
    expect(page.get_by_role("heading", name="Tom Becker")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("0 credits")
    context.close()


@pytest.mark.django_db(transaction=True)
def test_a_manager_moves_credits_to_a_member_and_sets_her_limit(page, login, screenshot):
    tom = UserFactory(first_name="Tom", last_name="Becker", email="tom@example.com")
    lena = UserFactory(first_name="Lena", last_name="Novak", email="lena@example.com")
    acme = CompanyFactory(name="Acme Ltd", members_can_use_credits=True)
    MembershipFactory(company=acme, user=tom, role="manager")
    MembershipFactory(company=acme, user=lena, role="member")
    services.add_credits(acme, 30)
    services.hold_credits(acme, 5, expires_at=timezone.now() + dt.timedelta(days=1))

    login(tom.email, PASSWORD)
    page.goto(f"/membership/companies/{acme.pk}/members/")
    transfer = page.get_by_role("region", name="Transfer credits")
    expect(transfer).to_contain_text("Acme Ltd has 25 credits available.")
    transfer.get_by_role("radio", name="From the company to the member").check()
    transfer.get_by_label("Member", exact=True).select_option(label="Lena Novak")
    transfer.get_by_label("Amount").fill("6")
    transfer.get_by_label("Memo").fill("Conference week")
    transfer.get_by_role("button", name="Transfer").click()
    expect(page.get_by_text("Transferred 6 credits from Acme Ltd to Lena Novak.")).to_be_visible()
    page.get_by_label("Monthly limit of Lena Novak").fill("10")
    page.get_by_role("button", name="Save the limit of Lena Novak").click()
    expect(page.get_by_text("Lena Novak now has a limit of 10 credits a month.")).to_be_visible()
    screenshot("company-members-limits")
    services.charge_credits(acme, 4, kind="booking", on_behalf_of=lena)

    page.get_by_role("button", name="Log out").click()
    login(lena.email, PASSWORD)
    page.goto("/membership/")
    expect(page.get_by_test_id("limit-left")).to_have_text(
        "Your monthly limit: 6 of 10 credits left this month."
    )
    personal = page.get_by_role("region", name="Personal")
    expect(personal.get_by_test_id("balance")).to_have_text("6 credits")
    expect(personal.get_by_role("link", name="Transfer from Acme Ltd")).to_be_visible()
    screenshot("membership-limit-left")


@pytest.mark.django_db(transaction=True)
def test_admin_grants_to_a_companys_members_and_some_emails(page, login, screenshot, eager_tasks):
    admin = User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )
    acme = CompanyFactory(name="Acme Ltd")
    for first, last in [("Tom", "Becker"), ("Lena", "Novak")]:
        MembershipFactory(company=acme, user=UserFactory(first_name=first, last_name=last))
    UserFactory(first_name="Sam", last_name="Okafor", email="sam@example.com")

    login(admin.email, PASSWORD)
    page.get_by_role("link", name="Grant to many").click()
    page.get_by_label("Members of a company").select_option(label="Acme Ltd")
    page.get_by_label("Or these emails").fill("sam@example.com")
    page.get_by_label("Amount").fill("5")
    page.get_by_label("Memo").fill("Sorry for the outage")
    page.get_by_role("button", name="Review").click()
    expect(page.get_by_test_id("grant-review")).to_contain_text(
        "3 customers get 5 credits each: 15 credits in all."
    )
    screenshot("grant-to-many-review")
    page.get_by_role("button", name="Grant 15 credits").click()
    expect(page.get_by_role("heading", name="Done")).to_be_visible()
    expect(page.get_by_text("3 of 3 customers have their credits")).to_be_visible()
    expect(page.get_by_role("table", name="Who got what").get_by_role("row")).to_have_count(4)
    screenshot("grant-to-many-result")
