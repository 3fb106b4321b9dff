"""API keys are created and revoked on the staff page "API keys" (api/views.py); the admin
only shows them, without their hashes."""

from django.contrib import admin

from credits.admin import ReadOnlyAdmin

from .models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope"]
    search_fields = ["name", "prefix"]
    exclude = ["hashed_key"]
