"""Repeated failed logins lock the account out from that address for a while (django-axes)."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from tests.factories import PASSWORD, UserFactory


def attempt(client: Client, email: str, password: str):
    return client.post("/login/", {"username": email, "password": password})


@pytest.mark.django_db
def test_five_wrong_passwords_lock_the_login_out_for_fifteen_minutes():
    assert settings.AXES_ENABLED
    member = UserFactory()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = attempt(client, member.email, "wrong-guess")
        assert response.status_code == 200  # the login form again, with its message
        assert "_auth_user_id" not in client.session
    # The fifth failure locks; from now on even the right password is refused.
    assert attempt(client, member.email, "wrong-guess").status_code == 429
    response = attempt(client, member.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "paused for 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session

    # Another address typed with different capitals is the same account: still locked.
    assert attempt(client, member.email.upper(), PASSWORD).status_code == 429

    # Other people are not affected.
    other = UserFactory()
    assert attempt(client, other.email, PASSWORD).status_code == 302

    # When the cool-off has passed, the right password works again.
    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))
    response = attempt(Client(), member.email, PASSWORD)
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_successful_login_resets_the_count():
    member = UserFactory()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, member.email, "wrong-guess")
    assert attempt(client, member.email, PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, member.email, "wrong-guess").status_code == 200
    assert attempt(client, member.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_the_test_clients_login_still_works_and_is_not_counted():
    member = UserFactory()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        assert client.login(username=member.email, password="wrong-guess") is False
    assert client.login(username=member.email, password=PASSWORD) is True
    assert AccessAttempt.objects.count() == 0
