"""Forms of the member side (Membership and Account pages). Shape only; services decide."""

from django import forms
from django.contrib.auth import forms as auth_forms

from spacecredits.validators import validate_single_line

from .auth import password_is_right
from .models import User


class ProfileForm(forms.Form):
    first_name = forms.CharField(
        label="First name", max_length=150, required=False, validators=[validate_single_line]
    )
    last_name = forms.CharField(
        label="Last name", max_length=150, required=False, validators=[validate_single_line]
    )
    email = forms.EmailField(
        label="Email",
        help_text="You log in with this address.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    current_password = forms.CharField(
        label="Current password",
        required=False,
        strip=False,
        help_text="Needed only when you change your email address.",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user: User, request, **kwargs):
        self.user = user
        self.request = request  # the password check counts towards the login lockout
        kwargs.setdefault(
            "initial",
            {"first_name": user.first_name, "last_name": user.last_name, "email": user.email},
        )
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        email = (cleaned.get("email") or "").strip().lower()
        if email and email != self.user.email.lower():
            # The email is the login: changing it takes the password, as a password change does.
            password = cleaned.get("current_password") or ""
            if not password or not password_is_right(self.request, self.user, password):
                self.add_error(
                    "current_password",
                    "Enter your current password to change your email address."
                    if not password
                    else "That is not your current password.",
                )
        return cleaned


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's password change, its old password checked as a login is (a wrong one counts
    towards the login lockout)."""

    def __init__(self, user: User, *args, request, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        if not password_is_right(self.request, self.user, old_password):
            raise forms.ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class CreditsVisibilityForm(forms.Form):
    members_can_use_credits = forms.BooleanField(
        label="Members can see and use company credits",
        required=False,
        help_text="Managers always can. When this is on, every member of the company sees "
        "its credit balance and transactions.",
    )
