"""Login throttling helpers for django-axes."""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import authenticate
from django.shortcuts import render

from .models import User


def login_attempt_username(request, credentials=None) -> str:
    """The email address a login attempt was for, as django-axes counts failures.

    Emails log in case-insensitively, so "Maria@Example.com" and "maria@example.com" are
    the same account and share one failure count.
    """
    data = credentials if credentials is not None else getattr(request, "POST", {})
    return (data.get("username") or "").strip().lower()


def password_is_right(request, user: User, password: str) -> bool:
    """Whether `password` is `user`'s, checked as a login is: through authenticate() and so
    django-axes. A wrong one counts towards the same lockout as a failed login (one count
    per email address and IP address); while that lockout lasts the answer is False
    whatever was typed, and AxesMiddleware answers the request with lockout_response.

    Every check of a password a person types goes through here, so that a stolen session
    cannot guess the password on the account forms faster than at the login page.
    """
    checked = authenticate(request, username=user.get_username(), password=password)
    return checked is not None and checked.pk == user.pk


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out password check gets (HTTP 429), saying for how long: a login,
    or, for someone logged in, the password change or email change on the Account page."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {
        "minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "logged_in": request.user.is_authenticated,
    }
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
