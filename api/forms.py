from django import forms

from .models import Scope


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="Which system uses it, e.g. “Bookings”. The history shows changes as "
        "“API: <name>”.",
    )
    scope = forms.ChoiceField(label="Scope", choices=Scope.choices, initial=Scope.READ)
