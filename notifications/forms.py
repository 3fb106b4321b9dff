from django import forms

from .models import NotificationPreferences


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = NotificationPreferences
        fields = ["email_credit_updates", "email_expiry_reminders"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self:  # Screen readers read the help text with the checkbox.
            field.field.widget.attrs["aria-describedby"] = f"{field.auto_id}_help"
