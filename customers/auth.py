"""Login throttling helpers for django-axes: logins, every other check of a password, and
requests for password reset emails share one lockout."""

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
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
    or, for someone logged in, the password change or email change on the Account page;
    or a request for too many password reset emails."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    match = getattr(request, "resolver_match", None)
    context = {
        "minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "logged_in": request.user.is_authenticated,
        "password_reset": match is not None and match.url_name == "password-reset",
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


def count_reset_request(request, email: str) -> bool:
    """Count a request for a password reset email towards the same lockout as a failed
    login for that address (one count per email address and IP address), whether or not
    an account has it; True when the lockout now holds, and nothing is to be sent.

    So a visitor cannot have a person's mailbox flooded, nor learn from the pace of the
    answers which addresses have accounts: everyone gets AXES_FAILURE_LIMIT - 1 emails
    per cool-off, then the lockout page, exactly as with wrong passwords.
    """
    credentials = {"username": email}
    if AxesProxyHandler.is_locked(request, credentials):
        request.axes_locked_out = True  # AxesMiddleware answers with lockout_response
        request.axes_credentials = credentials
        return True
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    return bool(getattr(request, "axes_locked_out", False))
