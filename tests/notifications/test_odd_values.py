"""Odd page numbers and ids on the notification list and mark-read never answer a 500."""

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from tests.credits.test_odd_query_values import ODD_VALUES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):
    member = UserFactory()
    client.force_login(member)
    return member


def notify(member, subject="25 credits added to your balance"):
    return Notification.objects.create(
        recipient=member,
        kind="credits_added",
        subject=subject,
        body=subject,
        link="/",
        created_at=timezone.now(),
    )


@pytest.mark.parametrize("value", ODD_VALUES)
def test_an_odd_page_number_shows_the_first_page_and_says_so(client, member, value):
    notify(member, "Welcome credits")
    response = client.get(reverse("notifications:list"), {"page": value})
    assert response.status_code == 200
    html = response.content.decode()
    assert "That is not a page number: this is the first page." in html
    assert "Welcome credits" in html


def test_a_page_past_the_end_shows_the_last_and_says_so(client, member):
    response = client.get(reverse("notifications:list"), {"page": "3"})
    assert response.status_code == 200
    assert "There is no page 3: this is the last page." in response.content.decode()


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize("value", ODD_VALUES + [""])
def test_mark_read_with_an_odd_id_is_refused_and_changes_nothing(client, member, value, htmx):
    notification = notify(member)
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post(reverse("notifications:mark_read"), {"id": value}, headers=headers)
    assert response.status_code == 400
    assert response.content.decode() == "That is not a notification's id.\n"
    notification.refresh_from_db()
    assert notification.read_at is None


def test_mark_read_of_an_id_nobody_has_is_not_found(client, member):
    response = client.post(reverse("notifications:mark_read"), {"id": str(2**63 - 1)})
    assert response.status_code == 404


@pytest.mark.parametrize("value", ODD_VALUES)
def test_mark_all_read_with_an_odd_page_goes_back_to_the_first_page(client, member, value):
    notification = notify(member)
    response = client.post(reverse("notifications:mark_read"), {"page": value})
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:list")
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_mark_all_read_keeps_a_real_page(client, member):
    response = client.post(reverse("notifications:mark_read"), {"page": "2"})
    assert response["Location"] == reverse("notifications:list") + "?page=2"
