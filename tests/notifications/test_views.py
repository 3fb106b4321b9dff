import json

import pytest
from django.urls import reverse

from credits import services
from notifications.models import Notification, NotificationPreferences
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):
    member = UserFactory()
    client.login(email=member.email, password=PASSWORD)
    return member


def test_the_list_shows_only_my_notifications_newest_first(client, member, clock):
    services.add_credits(member, 5, memo="First")
    clock.advance(minutes=1)
    services.add_credits(member, 7, memo="Second")
    services.add_credits(UserFactory(), 9, memo="Someone else's")

    response = client.get("/notifications/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Memo: Second") < html.index("Memo: First")
    assert "Someone else" not in html
    assert "2 unread" in html


def test_the_bell_in_the_header_counts_unread(client, member):
    services.add_credits(member, 5)
    services.add_credits(member, 6)
    home = client.get("/", follow=True).content.decode()  # members land on Membership
    assert 'aria-label="Notifications, 2 unread"' in home
    bell = client.get("/notifications/bell/").content.decode()
    assert 'aria-label="Notifications, 2 unread"' in bell
    assert "<html" not in bell


def test_mark_one_read_with_htmx_then_all_without(client, member):
    services.add_credits(member, 5)
    services.add_credits(member, 6)
    first, second = Notification.objects.order_by("id")

    response = client.post(
        reverse("notifications:mark_read"), {"id": first.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "notificationsChanged" in json.loads(response["HX-Trigger"])
    assert "Mark as read" not in response.content.decode()
    first.refresh_from_db()
    assert first.read_at is not None
    assert Notification.objects.filter(read_at__isnull=True).get() == second

    response = client.post(reverse("notifications:mark_read"))
    assert response.status_code == 302
    assert not Notification.objects.filter(read_at__isnull=True).exists()
    assert 'aria-label="Notifications"' in client.get("/", follow=True).content.decode()


def test_nobody_opens_or_marks_another_members_notification(client, member):
    services.add_credits(UserFactory(), 5)
    theirs = Notification.objects.get()
    assert client.get(reverse("notifications:open", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("notifications:mark_read"), {"id": theirs.pk}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_opening_a_notification_marks_it_read_and_goes_to_the_transactions(client, member):
    services.add_credits(member, 5)
    notification = Notification.objects.get()
    response = client.get(reverse("notifications:open", args=[notification.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"/membership/users/{member.pk}/transactions/"
    assert client.get(response["Location"]).status_code == 200
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_preferences_are_on_by_default_and_can_be_turned_off(client, member):
    html = client.get("/notifications/preferences/").content.decode()
    assert "Credit updates by admin" in html
    assert html.count("checked") == 2

    response = client.post("/notifications/preferences/", {"email_expiry_reminders": "on"})
    assert response.status_code == 302
    preferences = NotificationPreferences.objects.get(user=member)
    assert preferences.email_credit_updates is False
    assert preferences.email_expiry_reminders is True


def test_the_pages_need_a_login(client):
    for url in ["/notifications/", "/notifications/preferences/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    # A bell still polling after logout is told to stop (htmx: 286), and shows nothing.
    response = client.get("/notifications/bell/", HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and response.content == b""


def test_staff_see_failed_emails_and_their_error_in_the_admin(client, unreachable_smtp):
    from notifications import services as notifications

    member = UserFactory(email="failing@example.com")
    services.add_credits(member, 5)
    notification = Notification.objects.get()
    for _ in range(notifications.MAX_EMAIL_ATTEMPTS):
        notifications.deliver_email(notification.pk)

    admin = UserFactory(is_staff=True, is_superuser=True)
    client.login(email=admin.email, password=PASSWORD)
    html = client.get("/admin/notifications/notification/?email_status=failed").content.decode()
    assert str(member) in html
    assert "ConnectionRefusedError" in html
