import pytest

from tests.factories import PASSWORD, UserFactory


@pytest.mark.django_db(transaction=True)
def test_member_logs_in_and_out(page, login):
    member = UserFactory(first_name="Maria", last_name="Garcia")
    login(member.email, PASSWORD)
    assert page.get_by_role("heading", name="Membership").is_visible()
    page.get_by_role("button", name="Log out").click()
    assert page.get_by_role("heading", name="Log in").is_visible()


@pytest.mark.django_db(transaction=True)
def test_wrong_password_is_refused(page, login):
    member = UserFactory()
    login(member.email, "not-the-password")
    assert page.get_by_role("alert").is_visible()
    assert page.get_by_role("heading", name="Log in").is_visible()
