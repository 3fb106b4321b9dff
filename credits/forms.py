import datetime as dt
import hashlib
import re
import uuid
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from spacecredits.formats import format_credits, format_date
from spacecredits.params import whole_number

from .models import RECORDED_KINDS
from .services import ASCII_DIGITS_ONLY

# The dates a filter takes: a range that fits every calculation on it (the day after
# date_to, a day's start in the space's time zone), far wider than any ledger's life.
FIRST_FILTER_DATE = dt.date(1900, 1, 1)
LAST_FILTER_DATE = dt.date(2999, 12, 31)
FILTER_DATE_RANGE = (
    f"Enter a date between {format_date(FIRST_FILTER_DATE)} and {format_date(LAST_FILTER_DATE)}."
)


class FilterDateField(forms.DateField):
    default_validators = [
        MinValueValidator(FIRST_FILTER_DATE, message=FILTER_DATE_RANGE),
        MaxValueValidator(LAST_FILTER_DATE, message=FILTER_DATE_RANGE),
    ]


class CursorField(forms.Field):
    """A page link's position in the ledger (a `seq`): ASCII digits, within a bigint."""

    widget = forms.HiddenInput
    default_error_messages = {
        "invalid": "That page link is not valid: these are the newest transactions.",
    }

    def __init__(self, *, minimum: int, **kwargs):
        self.minimum = minimum
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        number = whole_number(value, minimum=self.minimum)
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class TransactionFilterForm(forms.Form):
    """Filters of a transactions page (admin and member alike). Shape only."""

    FILTERS = ("kind", "date_from", "date_to")

    kind = forms.ChoiceField(
        label="Type",
        required=False,
        # A kind not offered (a reserved one included) is an invalid filter value.
        choices=[("", "All types")] + [(kind.value, kind.label) for kind in RECORDED_KINDS],
    )
    date_from = FilterDateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = FilterDateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    before = CursorField(minimum=1)
    after = CursorField(minimum=0)

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

    def filter_errors(self) -> list[str]:
        """What is wrong with the filters (not the cursor), as "Label: message" lines."""
        self._valid_data()
        return [
            f"{self[name].label}: {error}"
            for name in self.FILTERS
            for error in self.errors.get(name, [])
        ]


class AmountInput(forms.TextInput):
    """A text field with "credits" after it: a number field has spinners, and the scroll
    wheel changes its value while the page scrolls. The server checks the number."""

    template_name = "forms/widgets/amount.html"

    def __init__(self, attrs=None):
        super().__init__({"inputmode": "decimal", "autocomplete": "off", **(attrs or {})})


class AmountField(forms.DecimalField):
    """A DecimalField that reads ASCII only, as services.clean_amount does: Decimal()
    reads "١٠" as 10 and "５" as 5, so the form would pass on a number nobody typed."""

    def to_python(self, value):
        if isinstance(value, str) and not value.isascii():
            raise ValidationError(ASCII_DIGITS_ONLY, code="ascii_digits")
        return super().to_python(value)


# The form's one-time key (idempotency_key) is a hidden field: its error is the form's.
TOKEN_INVALID = (
    "The one-time key of this form is missing or not valid, so nothing was saved. "
    "Check the values and save again."
)


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
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    amount = AmountField(
        label="Amount",
        max_digits=20,
        error_messages={
            "required": "Enter the amount.",
            "invalid": "Enter the amount as a number.",
        },
        widget=AmountInput,
    )
    memo = forms.CharField(
        label="Memo",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional. The customer sees it.",
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    @staticmethod
    def new_key() -> str:
        return uuid.uuid4().hex

    @classmethod
    def blank(cls, *, expiry="never", **kwargs):
        """A new form with its one-time key: submitting it twice records one adjustment.

        The dialog starts at "Never"; the Django admin page passes expiry="" (its radios
        unchecked, so that a date alone means that date)."""
        return cls(
            initial={"kind": "add", "expiry": expiry, "idempotency_key": cls.new_key()},
            **kwargs,
        )

    def submit_label(self) -> str:
        """What the submit button says: "Add 10 credits", "Deduct 2.50 credits", or "Add
        credits" until an amount is typed (static/js/app.js says the same as one types)."""
        verb = "Deduct" if self["kind"].value() == "deduct" else "Add"
        amount = typed_amount(self["amount"].value())
        return f"{verb} {format_credits(amount)}" if amount else f"{verb} credits"

    def balance_after(self, balance: Decimal) -> Decimal:
        """The balance once what is typed is recorded (the balance itself until then)."""
        amount = typed_amount(self["amount"].value()) or 0
        return balance - amount if self["kind"].value() == "deduct" else balance + amount

    def clean(self):
        cleaned = super().clean()
        if self.errors.pop("idempotency_key", None):
            # Said where a person reads it (a hidden field's error shows nowhere), with a
            # fresh key in the re-rendered form so that saving again can succeed.
            self.add_error(None, ValidationError(TOKEN_INVALID, code="token"))
            self.data = self.data.copy()
            self.data["idempotency_key"] = self.new_key()
        expiry = cleaned.pop("expiry", "")
        if cleaned.get("kind") == "deduct" or expiry == "never":
            cleaned["expires_on"] = None  # Expiration applies only to additions.
        elif expiry == "date" and not cleaned.get("expires_on") and "expires_on" not in self.errors:
            self.add_error("expires_on", "Choose the date the credits expire, or Never.")
        return cleaned


def typed_amount(value) -> Decimal | None:
    """The amount a person typed, if it is one the form could take (digits, at most two
    decimals, more than 0), for what the dialog says before it is sent; else None."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", value.strip()):
        amount = Decimal(value.strip())
        return amount if amount > 0 else None
    return None


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


class KeyedForm(forms.Form):
    """A form carrying its one-time key (submitting it twice records one change)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    @classmethod
    def blank(cls, **kwargs):
        return cls(
            initial={"idempotency_key": uuid.uuid4().hex, **kwargs.pop("initial", {})}, **kwargs
        )

    def clean(self):
        cleaned = super().clean()
        if self.errors.pop("idempotency_key", None):
            self.add_error(None, ValidationError(TOKEN_INVALID, code="token"))
            self.data = self.data.copy()
            self.data["idempotency_key"] = uuid.uuid4().hex
        return cleaned


class ReverseForm(KeyedForm):
    """Confirming a reversal: an optional memo. services.reverse_transaction decides."""

    memo = forms.CharField(
        label="Memo",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional. The customer sees it.",
    )


class TransferForm(KeyedForm):
    """ "Transfer credits" between a customer and one of `others`: staff's, between any
    customer and one of its companies or members (`by="staff"`), or a company manager's,
    between the company and one of its members (`by="manager"`). Only the words differ."""

    # by: (the directions' labels, out then in; who the other is; the memo's help)
    WORDS = {
        "staff": (
            ("From this customer", "To this customer"),
            "Other customer",
            "Optional. Both sides see it.",
        ),
        "manager": (
            ("From the company to the member", "From the member to the company"),
            "Member",
            "Optional. The member and the managers see it.",
        ),
    }

    direction = forms.ChoiceField(
        label="Direction",
        choices=[("out", "out"), ("in", "in")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the direction."},
    )
    other = forms.TypedChoiceField(coerce=int, error_messages={"required": "Choose who."})
    amount = AmountField(
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
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, others=(), by: str = "staff", **kwargs):
        super().__init__(*args, **kwargs)
        (out, in_), other_label, memo_help = self.WORDS[by]
        self.fields["direction"].choices = [("out", out), ("in", in_)]
        self.fields["other"].label = other_label
        self.fields["memo"].help_text = memo_help
        self.others = {other.pk: other for other in others}
        self.fields["other"].choices = [("", "Choose…")] + [
            (other.pk, other.display_name) for other in others
        ]

    def parties(self, customer) -> tuple:
        """(source, target) of the valid form's transfer for `customer`'s side of it."""
        other = self.others[self.cleaned_data["other"]]
        return (customer, other) if self.cleaned_data["direction"] == "out" else (other, customer)


class MonthlyLimitForm(forms.Form):
    """A member's monthly limit of the company's credits; empty: no limit."""

    monthly_credit_limit = AmountField(
        label="Monthly limit",
        required=False,
        max_digits=20,
        min_value=0,
        error_messages={"invalid": "Enter the limit as a number."},
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
        help_text="Credits per calendar month; empty: no limit.",
    )


class GrantToManyForm(KeyedForm):
    """ "Grant to many": one addition to a company's members or to a list of emails. Shape
    only: services.grant_to_many decides (past dates, amounts)."""

    company = forms.TypedChoiceField(
        label="Members of a company",
        required=False,
        coerce=int,
        empty_value=None,
        help_text="Everyone who belongs to the company, managers included.",
    )
    emails = forms.CharField(
        label="Or these emails",
        required=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One or more addresses, separated by commas, spaces or new lines.",
    )
    amount = AmountField(
        label="Amount",
        max_digits=20,
        error_messages={
            "required": "Enter the amount.",
            "invalid": "Enter the amount as a number.",
        },
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "inputmode": "decimal"}),
        help_text="Credits each customer gets.",
    )
    expires_on = forms.DateField(
        label="Expiration date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty: the credits never expire.",
    )
    memo = forms.CharField(
        label="Memo",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional. Each customer sees it.",
    )
    # The review's digest of what it showed: a confirmation of other values is reviewed
    # again rather than granted unseen.
    confirmed = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, companies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].choices = [("", "No company")] + [
            (company.pk, company.name) for company in companies
        ]

    def clean(self):
        cleaned = super().clean()
        emails = [e for e in re.split(r"[\s,;]+", cleaned.get("emails") or "") if e]
        cleaned["email_list"] = list(dict.fromkeys(e.lower() for e in emails))
        if not cleaned.get("company") and not emails and "company" not in self.errors:
            self.add_error("company", "Choose a company, or enter emails below.")
        return cleaned

    def reviewed_digest(self) -> str:
        """A digest of what the review shows (who, how much, until when, memo)."""
        data = self.cleaned_data
        seen = [data.get("company"), sorted(data["email_list"]), data.get("amount")]
        seen += [data.get("expires_on"), data.get("memo")]
        return hashlib.sha256(repr(seen).encode()).hexdigest()[:32]

    def is_confirmed(self) -> bool:
        return bool(self.cleaned_data.get("confirmed")) and (
            self.cleaned_data["confirmed"] == self.reviewed_digest()
        )
