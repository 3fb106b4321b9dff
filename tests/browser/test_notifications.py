import re

import pytest
from playwright.sync_api import expect

from credits import services
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, UserFactory


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks")
def test_member_reads_notifications_and_the_bell_follows(page, login, screenshot):
    member = UserFactory(first_name="Maria", last_name="Garcia")
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=member, role="manager")
    services.add_credits(member, 25, memo="Welcome bonus")
    services.add_credits(acme, 20)
    services.deduct_credits(acme, 5, memo="Meeting room")

    login(member.email, PASSWORD)
    bell = page.get_by_role("link", name="Notifications, 3 unread")
    expect(bell).to_be_visible()
    screenshot("notifications-bell")

    bell.click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    items = page.get_by_role("listitem")
    expect(items).to_have_count(3)
    expect(items.first).to_contain_text("5 credits were deducted from Acme Ltd's balance.")
    expect(items.last).to_contain_text(
        "25 credits were added to your balance. They never expire. Memo: Welcome bonus"
    )
    screenshot("notifications-list")

    page.get_by_role("button", name=re.compile("^Mark as read “25 credits added")).click()
    expect(page.get_by_role("link", name="Notifications, 2 unread")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Mark as read “"))).to_have_count(2)
    expect(page.get_by_text("2 unread", exact=True)).to_be_visible()
    screenshot("notifications-one-read")

    page.get_by_role("button", name="Mark all as read").click()
    expect(page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    expect(page.get_by_text("All read")).to_be_visible()

    page.get_by_role("link", name="Email preferences").click()
    checkbox = page.get_by_label("Credit updates by admin")
    expect(checkbox).to_be_checked()
    checkbox.uncheck()
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Your email preferences are saved.")).to_be_visible()
    expect(page.get_by_label("Credit updates by admin")).not_to_be_checked()
    expect(page.get_by_label("Expiry reminders")).to_be_checked()
    screenshot("notifications-preferences")

    # A new adjustment while the page is open: the bell fetches the count again (htmx
    # polls every 20 s; the same request runs on the event, which the test sends now).
    services.add_credits(member, 3)
    header = page.get_by_role("banner")
    expect(header.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    page.evaluate("document.body.dispatchEvent(new CustomEvent('notificationsChanged'))")
    expect(header.get_by_role("link", name="Notifications, 1 unread")).to_be_visible()
