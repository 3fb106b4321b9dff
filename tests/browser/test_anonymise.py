import pytest
from playwright.sync_api import expect

from credits import services
from customers.models import User
from tests.factories import PASSWORD, UserFactory


@pytest.mark.django_db(transaction=True)
def test_a_superuser_anonymises_a_member_from_the_profile(page, login, screenshot):
    User.objects.create_superuser("root@example.com", PASSWORD, first_name="Rosa")
    maria = UserFactory(email="maria@example.com", first_name="Maria", last_name="Garcia")
    services.add_credits(maria, 12, memo="Welcome")
    login("root@example.com", PASSWORD)
    page.goto(f"/customers/users/{maria.pk}/")
    page.get_by_role("link", name="Anonymise…").click()
    expect(page.get_by_role("heading", name="Anonymise Maria Garcia")).to_be_visible()
    page.get_by_label("Type their email address to confirm").fill("maria")
    page.get_by_role("button", name="Anonymise").click()  # not the address: refused
    expect(page.get_by_text("Type maria@example.com exactly as shown to confirm.")).to_be_visible()
    page.get_by_label("Type their email address to confirm").fill("maria@example.com")
    screenshot("anonymise")
    page.get_by_role("button", name="Anonymise").click()
    expect(page.get_by_role("heading", name=f"Former member #{maria.pk}")).to_be_visible()
    expect(page.get_by_text("12 credits never expire")).to_be_visible()
    expect(page.get_by_text("maria@example.com")).to_have_count(0)
    screenshot("anonymised-profile")
