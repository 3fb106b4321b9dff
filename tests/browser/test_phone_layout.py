"""On a phone (390 x 844): compact transaction rows, labels whole, "Mark as read" under
the text (issue 15, item 6). Screenshots go to docs/screenshots/."""

import pytest
from playwright.sync_api import expect

from credits import services
from customers.models import User
from tests.factories import PASSWORD, UserFactory

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def maria(db):
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    admin = User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )
    services.add_credits(maria, 40, memo="Welcome bonus for the whole first month", actor=admin)
    services.deduct_credits(maria, 5, memo="Meeting room", actor=admin)
    services.deduct_credits(maria, 2)
    return maria


def _boxes(page, selector):
    return page.locator(selector).evaluate_all(
        "cells => cells.map(c => { const b = c.getBoundingClientRect();"
        " return {top: b.top, bottom: b.bottom, left: b.left, right: b.right, height: b.height}; })"
    )


@pytest.mark.django_db(transaction=True)
def test_transaction_rows_are_compact_on_a_phone(page, login, screenshot, maria):
    page.set_viewport_size(PHONE)
    login("ada@example.com", PASSWORD)
    page.goto(f"/customers/users/{maria.pk}/transactions/")
    table = page.get_by_role("table", name="Credit transactions, newest first")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    screenshot("transactions-phone")
    for index in range(rows.count()):
        row = rows.nth(index)
        box = row.bounding_box()
        # Seven stacked label lines were about 200 px (and more with what a row now also
        # holds); now four short lines, the long memo's second line, and here "Credits
        # used" and "Reverse".
        assert box["height"] <= 170, (index, box)
        date, kind, amount = (
            row.locator(f'td[data-label="{label}"]').bounding_box()
            for label in ("Date", "Type", "Amount")
        )
        # Date and type on the left, the amount on the right, level with the date.
        assert date["x"] < box["x"] + 20 and kind["x"] < box["x"] + 20
        assert amount["x"] + amount["width"] > box["x"] + box["width"] - 20
        assert abs(amount["y"] - date["y"]) < 12
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.django_db(transaction=True)
def test_no_label_breaks_inside_a_word_on_a_phone(page, login, maria):
    page.set_viewport_size(PHONE)
    login("ada@example.com", PASSWORD)
    # A long memo and a long name are what squeezed the labels.
    for url in ["/customers/", f"/customers/users/{maria.pk}/"]:
        page.goto(url)
        labels = page.locator("td[data-label]").evaluate_all(
            "cells => cells.map(c => { const s = getComputedStyle(c, '::before');"
            " return [c.dataset.label, s.content, s.whiteSpace, s.flexShrink]; })"
        )
        assert labels
        for label, content, white_space, shrink in labels:
            if content != "none":
                assert white_space == "nowrap" and shrink == "0", (url, label)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks")
def test_mark_as_read_sits_under_the_text_on_a_phone(page, login, screenshot, maria):
    page.set_viewport_size(PHONE)
    login(maria.email, PASSWORD)
    page.goto("/notifications/")
    item = page.get_by_role("listitem").first
    text = item.locator(".notification__main").bounding_box()
    button = item.get_by_role("button", name="Mark as read").bounding_box()
    assert button["y"] >= text["y"] + text["height"] - 1
    # The text has the row's whole width.
    assert text["width"] >= item.bounding_box()["width"] - 40
    screenshot("notifications-phone")
