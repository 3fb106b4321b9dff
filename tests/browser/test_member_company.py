"""A company manager shares company credits with members; a member then sees them."""

import pytest
from playwright.sync_api import expect

from credits import services
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, UserFactory


@pytest.mark.django_db(transaction=True)
def test_manager_turns_on_member_visibility_and_member_sees_company(page, login, screenshot):
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    lena = UserFactory(first_name="Lena", last_name="Novak")
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=maria, role="manager")
    MembershipFactory(company=acme, user=lena, role="member")
    services.add_credits(acme, 120, memo="Company plan")

    # Before: Lena sees no company credits.
    login(lena.email, PASSWORD)
    assert page.get_by_role("region", name="Acme Ltd", exact=True).count() == 0
    assert page.get_by_text("its managers have not shared").is_visible()
    page.get_by_role("button", name="Log out").click()

    # Maria, a manager, opens the company's Members page and turns sharing on.
    login(maria.email, PASSWORD)
    company = page.get_by_role("region", name="Acme Ltd", exact=True)
    company.get_by_role("link", name="Members").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("cell", name="Lena Novak", exact=True).is_visible()
    switch = page.get_by_label("Members can see and use company credits")
    assert not switch.is_checked()
    switch.check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Every member sees")).to_be_visible()
    expect(
        page.locator("#toasts").get_by_text(
            "Members of Acme Ltd can now see and use company credits."
        )
    ).to_be_visible()
    screenshot("member-company-members")
    page.get_by_role("button", name="Log out").click()

    # After: Lena sees the company's credits, but not who else is in it.
    login(lena.email, PASSWORD)
    company = page.get_by_role("region", name="Acme Ltd", exact=True)
    assert "120 credits" in company.get_by_role("region", name="Acme Ltd credits").inner_text()
    assert company.get_by_role("link", name="Members").count() == 0
    company.get_by_role("link", name="View all transactions of Acme Ltd").click()
    page.wait_for_load_state("networkidle")
    assert "Company plan" in page.locator("table tbody tr").first.inner_text()
    response = page.goto(f"/membership/companies/{acme.pk}/members/")
    assert response.status == 404
