"""A member reads their credits: Membership, expiration details, Transactions, filters,
pages, CSV; tampering with ids gets 404. Screenshots go to docs/screenshots/."""

import csv
import datetime as dt
import io
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from credits import services
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, StaffFactory, UserFactory


@pytest.fixture
def maria(db):
    admin = StaffFactory(first_name="Ada", last_name="Admin")
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    expires = timezone.localdate() + dt.timedelta(days=30)
    services.add_credits(maria, 40, memo="Welcome bonus", actor=admin)
    for day in range(1, 29):
        services.deduct_credits(maria, 1, memo=f"Meeting room {day}", actor=admin)
    services.add_credits(maria, 12, expires_on=expires, memo="June top-up", actor=admin)
    services.add_credits(maria, 10, memo="Goodwill", actor=admin)
    maria.expires = expires
    return maria


@pytest.mark.django_db(transaction=True)
def test_member_reads_credits_filters_pages_and_downloads_csv(page, login, screenshot, maria):
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=maria, role="manager")
    services.add_credits(acme, 250, memo="Company plan")

    login(maria.email, PASSWORD)
    assert page.url.endswith("/membership/")
    personal = page.get_by_role("region", name="Personal", exact=True)
    credits = personal.get_by_role("region", name="Personal credits")
    assert "34 credits" in credits.inner_text()
    details = credits.get_by_role("list", name="Expiration details").inner_text()
    assert f"12 credits expire on {maria.expires:%-d %b %Y}" in details
    assert "22 credits never expire" in details
    assert page.get_by_role("region", name="Acme Ltd", exact=True).is_visible()
    # Each section's regions are named after it, so a screen reader's list of landmarks
    # tells "Personal credits" from "Acme Ltd credits".
    names = page.locator("section[aria-label]").evaluate_all(
        "sections => sections.map(s => s.getAttribute('aria-label'))"
    )
    assert names == [
        "Personal credits",
        "Personal transactions",
        "Acme Ltd credits",
        "Acme Ltd transactions",
    ]
    screenshot("member-membership")

    personal.get_by_role("link", name="View all transactions of Personal").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Transactions").is_visible()
    rows = page.locator("table tbody tr")
    assert rows.count() == 25
    assert "Goodwill" in rows.first.inner_text()
    assert "The space" in rows.first.inner_text()
    assert "Ada Admin" not in page.content()
    screenshot("member-transactions")

    # Deep pages by cursor, then back.
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(6)
    expect(rows.last).to_contain_text("Welcome bonus")
    expect(page).to_have_url(re.compile(r"before=\d+"))
    page.get_by_role("link", name="← Newer").click()
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("Goodwill")

    # Filter by type.
    page.get_by_label("Type").select_option(label="Added by admin")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(3)
    expect(page).to_have_url(re.compile(r"kind=admin_allocation"))
    screenshot("member-transactions-filtered")

    # The CSV holds what the filter shows, and never an admin's name.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == "credits-personal.csv"
    with open(download.path(), encoding="utf-8") as handle:
        lines = list(csv.reader(io.StringIO(handle.read())))
    assert lines[0][:4] == ["Date", "Type", "Memo", "Amount"]
    assert [line[2] for line in lines[1:]] == ["Goodwill", "June top-up", "Welcome bonus"]
    assert {line[6] for line in lines[1:]} == {"The space"}  # "By"


@pytest.mark.django_db(transaction=True)
def test_member_tampering_with_ids_gets_404(page, login, maria):
    tom = UserFactory(first_name="Tom", last_name="Becker")
    services.add_credits(tom, 7, memo="Tom's secret")
    globex = CompanyFactory(name="Globex Corp")
    services.add_credits(globex, 9, memo="Globex private")

    login(maria.email, PASSWORD)
    for url in [
        f"/membership/users/{tom.pk}/transactions/",
        f"/membership/users/{tom.pk}/transactions.csv",
        f"/membership/users/{maria.pk}/transactions/?user={tom.pk}&company={globex.pk}",
        f"/membership/companies/{globex.pk}/transactions/",
        f"/membership/companies/{globex.pk}/transactions.csv",
        f"/membership/companies/{globex.pk}/members/",
    ]:
        response = page.goto(url)
        content = page.content()
        assert "Tom's secret" not in content and "Globex" not in content, url
        if "?user=" in url:
            assert response.status == 200  # her own list: the extra ids are ignored
            assert "Goodwill" in content
        else:
            assert response.status == 404, url
            assert page.get_by_role("heading", name="Page not found").is_visible()


@pytest.mark.django_db(transaction=True)
def test_membership_on_a_phone(page, login, screenshot, maria):
    page.set_viewport_size({"width": 390, "height": 844})
    login(maria.email, PASSWORD)
    credits = page.get_by_role("region", name="Personal", exact=True)
    assert credits.is_visible()
    screenshot("member-membership-phone")
    page.get_by_role("link", name="View all transactions of Personal").click()
    page.wait_for_load_state("networkidle")
    # No sideways scrolling: the table turns into cards.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot("member-transactions-phone", full_page=False)


@pytest.mark.django_db(transaction=True)
def test_account_page(page, login, screenshot, maria):
    login(maria.email, PASSWORD)
    page.get_by_role("link", name="Account").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Account", exact=True).is_visible()
    assert page.get_by_role("link", name="Notification preferences").get_attribute("href") == (
        "/notifications/preferences/"
    )
    page.get_by_label("Last name").fill("García")
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("Your profile was saved.").is_visible()
    assert page.get_by_label("Last name").input_value() == "García"
    screenshot("member-account")
