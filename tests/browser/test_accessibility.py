"""axe-core (its default rules, WCAG 2.x A and AA and best practices) finds no violation on
any main page, staff and member, nor in the open Adjust balance dialog (issue 15)."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from credits import services
from customers.models import User
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, UserFactory


@pytest.fixture
def people(db):
    admin = User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    acme = CompanyFactory(name="Acme Ltd", members_can_use_credits=True)
    MembershipFactory(company=acme, user=maria, role="manager")
    services.add_credits(maria, 25, memo="Welcome bonus", actor=admin)
    services.add_credits(acme, 100, memo="Company plan", actor=admin)
    services.deduct_credits(acme, 10, memo="Meeting room", actor=admin)
    return admin, maria, acme


def _violations(page) -> str:
    results = Axe().run(page)
    return "" if results.violations_count == 0 else results.generate_report()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks")
@pytest.mark.parametrize("viewport", [(1280, 860), (390, 844)], ids=["desktop", "phone"])
def test_axe_finds_no_violation_on_the_main_pages(page, login, people, viewport):
    admin, maria, acme = people
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    page.goto("/login/")
    report = {"login": _violations(page)}

    login(admin.email, PASSWORD)
    for name, url in {
        "customers": "/customers/",
        "companies": "/customers/?tab=companies",
        "user profile": maria.get_absolute_url(),
        "company profile": acme.get_absolute_url(),
        "transactions": f"/customers/companies/{acme.pk}/transactions/",
    }.items():
        page.goto(url)
        report[name] = _violations(page)
    page.goto(maria.get_absolute_url())
    page.get_by_role("button", name="Adjust balance").click()
    expect(page.get_by_role("dialog", name="Adjust balance")).to_be_visible()
    report["adjust dialog"] = _violations(page)
    page.get_by_role("dialog").get_by_role("button", name="Add credits").click()
    expect(page.get_by_text("Enter the amount.")).to_be_visible()
    report["adjust dialog with an error"] = _violations(page)
    page.context.clear_cookies()

    login(maria.email, PASSWORD)
    for name, url in {
        "membership": "/membership/",
        "member transactions": f"/membership/companies/{acme.pk}/transactions/",
        "company members": f"/membership/companies/{acme.pk}/members/",
        "account": "/account/",
        "notifications": "/notifications/",
        "preferences": "/notifications/preferences/",
    }.items():
        page.goto(url)
        report[name] = _violations(page)
    problems = {name: found for name, found in report.items() if found}
    assert not problems, "\n\n".join(f"{name}: {found}" for name, found in problems.items())


@pytest.mark.django_db(transaction=True)
def test_axe_runs_under_the_pages_policy_and_reports_what_it_finds(page, people, login):
    """The check above is not empty: on one of our pages (its Content-Security-Policy
    included), an image without a text alternative is reported."""
    admin, _, _ = people
    login(admin.email, PASSWORD)
    page.goto("/customers/")
    page.evaluate("document.querySelector('main').append(document.createElement('img'))")
    assert "image-alt" in _violations(page)
