"""The login and password reset forms (staff and members alike). The member side's forms:
member_forms.py."""

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


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's request for a reset link. It emails only active accounts with a usable
    password, and the page answers the same whether or not one has the address; Django logs a
    mail server that fails rather than show it (that answer would tell the address
    exists)."""

    email = forms.EmailField(
        label="Email",
        max_length=254,
        help_text="The address you log in with. If an account has it, we email it a link.",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class AnonymiseForm(forms.Form):
    """The confirmation of an anonymisation: the person's email address, typed."""

    confirm_email = forms.CharField(
        label="Type their email address to confirm",
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, person, **kwargs):
        self.person = person
        super().__init__(*args, **kwargs)

    def clean_confirm_email(self):
        typed = self.cleaned_data["confirm_email"].strip()
        if typed.lower() != self.person.email.lower():
            raise forms.ValidationError(
                f"Type {self.person.email} exactly as shown to confirm.", code="mismatch"
            )
        return typed
