"""Guessing passwords: after five wrong ones the login is paused, even for the right one."""

import pytest
from django.conf import settings

from tests.factories import PASSWORD, UserFactory


@pytest.mark.django_db(transaction=True)
def test_login_is_paused_after_repeated_wrong_passwords(page, login, screenshot):
    member = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(member.email, "not-the-password")
    login(member.email, PASSWORD)
    assert page.get_by_role("heading", name="Too many failed logins").is_visible()
    assert page.get_by_role("alert").inner_text().endswith("paused for 15 minutes.")
    screenshot("member-login-locked")
    assert page.get_by_role("link", name="Membership").count() == 0
