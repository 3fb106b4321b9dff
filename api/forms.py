from django import forms

from .models import Scope, WebhookEvent


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="Which system uses it, e.g. “Bookings”. The history shows changes as "
        "“API: <name>”.",
    )
    scope = forms.ChoiceField(label="Scope", choices=Scope.choices, initial=Scope.READ)


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=2000,
        assume_scheme="https",
        help_text="Where events are sent (http or https; private addresses are refused).",
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[WebhookEvent.CREDIT_TRANSACTION_CREATED],
    )
