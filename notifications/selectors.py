"""Reads of a member's notifications; every query is scoped to the recipient."""

from django.db.models import QuerySet

from .models import Notification, NotificationPreferences


def inbox(recipient) -> QuerySet[Notification]:
    """The recipient's notifications, newest first. Nobody reads another's."""
    return Notification.objects.filter(recipient=recipient).order_by("-created_at", "-id")


UNREAD_COUNT_CAP = 100


def unread_count(recipient) -> int:
    """Unread notifications, counted up to UNREAD_COUNT_CAP (the bell shows "99+"), so the
    count every page and every bell poll asks for stays cheap however many there are."""
    unread = Notification.objects.filter(recipient=recipient, read_at__isnull=True)
    return unread.values("pk")[:UNREAD_COUNT_CAP].count()


def preferences_of(user) -> NotificationPreferences:
    """The user's saved choices, or the defaults (not saved) when they never chose."""
    return NotificationPreferences.objects.filter(user=user).first() or NotificationPreferences(
        user=user
    )


def references_told(kind: str, references: list[str]) -> set[str]:
    """Which of these references have a notification of this kind (to anyone)."""
    if not references:
        return set()
    told = Notification.objects.filter(kind=kind, reference__in=references)
    return set(told.values_list("reference", flat=True).distinct())
