"""The login form (staff and members alike). The member side's forms: member_forms.py."""

from django import forms
from django.contrib.auth import forms as auth_forms


class LoginForm(auth_forms.AuthenticationForm):
    """Django's login form; its username is the email address people log in with."""

    username = auth_forms.UsernameField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # After UsernameField's own "username": browsers offer the email addresses they know.
        self.fields["username"].widget.attrs["autocomplete"] = "email"
