import re

import pytest
from django.core import mail

from tests.factories import UserFactory

NEW_PASSWORD = "a-new-and-long-passphrase"


@pytest.mark.django_db(transaction=True)
def test_a_member_resets_a_forgotten_password_from_the_login_page(
    page, live_server, settings, screenshot
):
    settings.SITE_URL = live_server.url
    member = UserFactory(email="maria@example.com", first_name="Maria")
    page.goto("/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    assert page.get_by_role("heading", name="Reset your password").is_visible()
    page.get_by_label("Email").fill("maria@example.com")
    screenshot("password-reset")
    page.get_by_role("button", name="Email me a link").click()
    assert page.get_by_role("heading", name="Check your email").is_visible()
    link = re.search(r"https?://\S+/password-reset/\S+/", mail.outbox[0].body)[0]
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    assert page.get_by_role("heading", name="Your password was changed").is_visible()
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("heading", name="Membership").is_visible()
