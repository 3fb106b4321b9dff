from django import forms

from .models import NotificationPreferences


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = NotificationPreferences
        fields = ["email_credit_updates", "email_expiry_reminders"]
