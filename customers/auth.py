"""Login throttling helpers for django-axes."""

from axes.backends import AxesStandaloneBackend
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


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every login made through an HTTP request (the login
    page, the Django admin). A call to authenticate() without a request (the test client's
    login(), a shell) is not a visitor guessing passwords: it goes on to the next backend
    instead of failing with AxesBackendRequestParameterRequired."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
