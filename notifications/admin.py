"""Staff see every notification with its email state and last error, and can send a
failed email again. Notifications themselves are not edited here."""

from django.contrib import admin, messages

from . import services
from .models import CapturedEmail, EmailStatus, Notification, NotificationPreferences


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "recipient",
        "email_to",
        "kind",
        "subject",
        "email_status",
        "email_attempts",
        "email_error_short",
        "read_at",
    ]
    list_filter = ["email_status", "kind", "created_at"]
    search_fields = ["recipient__email", "email_to", "subject", "body", "email_error"]
    list_select_related = ["recipient"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["send_failed_again"]
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Email error")
    def email_error_short(self, notification):
        error = notification.email_error
        return error if len(error) <= 80 else error[:79] + "…"

    @admin.action(description="Send failed emails again", permissions=["change"])
    def send_failed_again(self, request, queryset):
        count = services.retry_failed_emails(
            queryset.filter(email_status=EmailStatus.FAILED).values_list("pk", flat=True)
        )
        messages.success(request, f"{count} email(s) queued to be sent again.")


@admin.register(NotificationPreferences)
class NotificationPreferencesAdmin(admin.ModelAdmin):
    list_display = ["user", "email_credit_updates", "email_expiry_reminders"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


@admin.register(CapturedEmail)
class CapturedEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to", "subject"]
    search_fields = ["to", "subject"]
    readonly_fields = ["to", "subject", "body", "html", "message_id", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
