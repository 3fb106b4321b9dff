"""Reads of a member's notifications; every query is scoped to the recipient."""

from django.db.models import QuerySet

from .models import Notification, NotificationPreferences


def inbox(recipient) -> QuerySet[Notification]:
    """The recipient's notifications, newest first. Nobody reads another's."""
    return Notification.objects.filter(recipient=recipient).order_by("-created_at", "-id")


def unread_count(recipient) -> int:
    return Notification.objects.filter(recipient=recipient, read_at__isnull=True).count()


def preferences_of(user) -> NotificationPreferences:
    """The user's saved choices, or the defaults (not saved) when they never chose."""
    return NotificationPreferences.objects.filter(user=user).first() or NotificationPreferences(
        user=user
    )
