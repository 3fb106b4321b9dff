"""Every main page runs under the Content-Security-Policy with no console error: nothing
inline is refused, and htmx (the search, the Adjust balance dialog) still works."""

import pytest
from playwright.sync_api import expect

from credits import services
from customers.models import User
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, UserFactory


@pytest.fixture
def console_errors(page):
    """Console errors (a refused inline script or style is one) and uncaught exceptions."""
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks")
def test_the_main_pages_log_no_console_error_under_the_policy(page, login, console_errors):
    admin = User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=admin, role="manager")
    services.add_credits(admin, 10, memo="Welcome")
    services.add_credits(maria, 40, memo="Plan")

    response = page.goto("/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    login(admin.email, PASSWORD)

    expect(page.get_by_role("heading", name="Customers")).to_be_visible()
    page.get_by_role("searchbox", name="Search customers").fill("garc")
    page.get_by_role("link", name="Maria Garcia").click()
    expect(page.get_by_role("heading", name="Maria Garcia")).to_be_visible()

    # The dialog is fetched and submitted by htmx, and the toast is shown by app.js.
    page.get_by_role("button", name="Adjust balance").click()
    dialog = page.get_by_role("dialog", name="Adjust balance")
    expect(dialog).to_be_visible()
    dialog.get_by_role("radio", name="Add").check()
    dialog.get_by_role("radio", name="Never").check()
    dialog.get_by_label("Amount").fill("5")
    dialog.get_by_role("button", name="Add 5 credits").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status").filter(has_text="Added 5 credits")).to_be_visible()

    for url in [
        f"/customers/users/{maria.pk}/transactions/",
        "/membership/",
        "/notifications/",
        "/account/",
        "/admin/",
        f"/admin/customers/user/{maria.pk}/change/",
    ]:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert console_errors == [], url
    assert console_errors == []
