import re

import pytest
from playwright.sync_api import expect

from credits import services
from customers.models import User
from tests.factories import PASSWORD, UserFactory


@pytest.mark.django_db(transaction=True)
def test_the_count_follows_the_search_and_the_list_sorts_and_filters(page, login, screenshot):
    User.objects.create_superuser("root@example.com", PASSWORD, first_name="Rosa", last_name="Root")
    for n, (first, last) in enumerate(
        [("Maria", "Garcia"), ("Tom", "Becker"), ("Lena", "Novak"), ("Sam", "Okafor")]
    ):
        person = UserFactory(first_name=first, last_name=last, is_active=first != "Tom")
        services.add_credits(person, 10 * (n + 1))
    login("root@example.com", PASSWORD)
    count = page.get_by_role("status").filter(has_text="users")
    expect(count).to_have_text("5 users")
    expect(count).to_have_attribute("aria-live", "polite")
    page.get_by_role("searchbox", name="Search customers").fill("k")
    expect(page.locator("#result-count")).to_have_text("3 users")  # Becker, Novak, Okafor
    page.get_by_role("searchbox", name="Search customers").fill("gar")
    expect(page.locator("#result-count")).to_have_text("1 user")
    page.get_by_role("searchbox", name="Search customers").fill("")
    expect(page.locator("#result-count")).to_have_text("5 users")

    page.get_by_label("Show").select_option("Inactive")
    expect(page.locator("#result-count")).to_have_text("1 user")
    expect(page.get_by_role("row", name="Tom Becker")).to_be_visible()
    page.get_by_label("Show").select_option("All accounts")
    expect(page.locator("#result-count")).to_have_text("5 users")

    page.get_by_role("link", name="Credit balance").click()
    page.get_by_role("link", name="Credit balance").click()  # highest first
    expect(page.get_by_role("columnheader", name="Credit balance")).to_have_attribute(
        "aria-sort", "descending"
    )
    first_rows = page.locator("tbody tr td:first-child")
    expect(first_rows.first).to_have_text("Sam Okafor")
    screenshot("customers-list-sorted")
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_label("Sort").select_option("Name, Z to A")  # no headers on a phone
    expect(first_rows.first).to_contain_text("Tom Becker")
    expect(page).to_have_url(re.compile(r"sort=-name"))
    screenshot("customers-list-phone")
