import uuid

from django import forms
from django.core.exceptions import ValidationError

from .models import TransactionKind


class TransactionFilterForm(forms.Form):
    """Filters of a transactions page (admin and member alike). Shape only."""

    kind = forms.ChoiceField(
        label="Type",
        required=False,
        choices=[("", "All types")] + list(TransactionKind.choices),
    )
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date must be on or after the start date.")
        return cleaned

    def _valid_data(self) -> dict:
        # The fields that are valid: one bad filter does not drop the others.
        self.is_valid()
        return getattr(self, "cleaned_data", {})

    def filters(self) -> dict:
        """Keyword arguments for selectors.filter_transactions."""
        data = self._valid_data()
        return {
            "kinds": [data["kind"]] if data.get("kind") else None,
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }

    def cursor(self) -> dict:
        data = self._valid_data()
        return {"before": data.get("before"), "after": data.get("after")}


class AdjustBalanceForm(forms.Form):
    """The "Adjust balance" form. Checks the shape; services.adjust_balance decides."""

    kind = forms.ChoiceField(
        label="Adjustment type",
        choices=[("add", "Add"), ("deduct", "Deduct")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose Add or Deduct."},
    )
    # "Never" or "On a date" (then `expires_on`). Optional so that a post with only a date
    # (the Django admin page, older clients) still means "expires on that date".
    expiry = forms.ChoiceField(
        label="Expiration",
        required=False,
        choices=[("never", "Never"), ("date", "On a date")],
        widget=forms.RadioSelect,
    )
    expires_on = forms.DateField(
        label="Expiration date",
        required=False,
        help_text="Leave empty for credits that never expire.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    amount = forms.DecimalField(
        label="Amount",
        max_digits=20,
        error_messages={
            "required": "Enter the amount.",
            "invalid": "Enter the amount as a number.",
        },
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "inputmode": "decimal"}),
    )
    memo = forms.CharField(
        label="Memo",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional. The customer sees it.",
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    @classmethod
    def blank(cls, **kwargs):
        """A new form with its one-time key: submitting it twice records one adjustment."""
        return cls(
            initial={"kind": "add", "idempotency_key": uuid.uuid4().hex},
            **kwargs,
        )

    def clean(self):
        cleaned = super().clean()
        expiry = cleaned.pop("expiry", "")
        if cleaned.get("kind") == "deduct" or expiry == "never":
            cleaned["expires_on"] = None  # Expiration applies only to additions.
        elif expiry == "date" and not cleaned.get("expires_on") and "expires_on" not in self.errors:
            self.add_error("expires_on", "Choose the date the credits expire, or Never.")
        return cleaned


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError next to the field it names (amount for a
    deduction larger than the balance), or at the top of the form."""
    if hasattr(error, "error_dict"):
        for field, field_errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, field_errors)
    elif getattr(error, "code", None) == "insufficient_credits":
        form.add_error("amount", error)
    else:
        form.add_error(None, error)
