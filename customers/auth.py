"""Login throttling helpers for django-axes."""

from django.conf import settings
from django.shortcuts import render


def login_attempt_username(request, credentials=None) -> str:
    """The email address a login attempt was for, as django-axes counts failures.

    Emails log in case-insensitively, so "Maria@Example.com" and "maria@example.com" are
    the same account and share one failure count.
    """
    data = credentials if credentials is not None else getattr(request, "POST", {})
    return (data.get("username") or "").strip().lower()


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out login attempt gets (HTTP 429), saying for how long."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {"minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "account/locked_out.html", context, status=429)
