import pytest
from playwright.sync_api import expect

from customers.models import User
from tests.factories import PASSWORD, UserFactory


@pytest.mark.django_db(transaction=True)
def test_the_adjust_dialog_warns_that_an_inactive_member_will_not_be_told(page, login, screenshot):
    User.objects.create_superuser("root@example.com", PASSWORD, first_name="Rosa")
    UserFactory(first_name="Tom", last_name="Becker", is_active=False)
    login("root@example.com", PASSWORD)
    page.get_by_role("searchbox", name="Search customers").fill("becker")
    row = page.get_by_role("row", name="Tom Becker")
    expect(row.get_by_text("Inactive")).to_be_visible()
    row.get_by_role("link", name="Tom Becker").click()
    expect(page.get_by_role("heading", name="Tom Becker")).to_contain_text("Inactive")
    page.get_by_role("button", name="Adjust balance").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("note")).to_have_text(
        "Nobody will be notified: Tom Becker's account is inactive (they cannot log in)."
    )
    screenshot("adjust-dialog-nobody-told", full_page=False)
