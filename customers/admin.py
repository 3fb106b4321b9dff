from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse

from credits.admin import AdjustBalanceAdminMixin

from . import services
from .models import Company, CompanyMembership, User


class MembershipInline(admin.TabularInline):
    model = CompanyMembership
    extra = 0
    autocomplete_fields = ["user", "company"]


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeFormForEmail(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(AdjustBalanceAdminMixin, BaseUserAdmin):
    form = UserChangeFormForEmail
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "first_name", "last_name"]
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    # Staff who may change users could take an account over through anything that lets
    # them in as its owner (a password they choose, an email they can reset it from) or
    # hand out access (the active flag, staff status, superuser, groups, permissions).
    # So only superusers change staff and superuser accounts at all, and anyone's
    # password; other staff edit members' names and emails and see the rest read-only.
    fields_staff_edit_on_members = ("email", "first_name", "last_name")

    def has_change_permission(self, request, obj=None):
        if obj is not None and (obj.is_staff or obj.is_superuser) and not request.user.is_superuser:
            return False  # the change form shows read-only; the password view answers 403
        return super().has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser or obj is None:
            return fieldsets
        # A read-only "password" would show its hash: say only whether one is set.
        return [
            (name, {**options, "fields": [self._unhashed(f) for f in options["fields"]]})
            for name, options in fieldsets
        ]

    @staticmethod
    def _unhashed(field):
        return "password_status" if field == "password" else field

    @admin.display(description="Password")
    def password_status(self, user):
        state = "Set" if user.has_usable_password() else "Not set"
        return f"{state} (only a superuser changes passwords)"

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser or obj is None:
            return readonly
        fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        return (*readonly, *(f for f in fields if f not in self.fields_staff_edit_on_members))

    # Nor does anyone but a superuser delete one: the Delete button is not shown, and the
    # delete view and the bulk action refuse with a message rather than a bare 403.
    SUPERUSER_NOT_DELETED = (
        "Only a superuser can delete a superuser account: {names} {verb} not deleted."
    )

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def _refuse_deleting_superusers(self, request, users) -> bool:
        """Say so and return True when a non-superuser asks to delete superusers."""
        if request.user.is_superuser:
            return False
        superusers = [user.email for user in users if user.is_superuser]
        if superusers:
            self.message_user(
                request,
                self.SUPERUSER_NOT_DELETED.format(
                    names=", ".join(superusers), verb="was" if len(superusers) == 1 else "were"
                ),
                messages.ERROR,
            )
        return bool(superusers)

    def delete_view(self, request, object_id, extra_context=None):
        user = self.get_object(request, unquote(object_id))
        if user is not None and self._refuse_deleting_superusers(request, [user]):
            return redirect(reverse("admin:customers_user_change", args=[user.pk]))
        return super().delete_view(request, object_id, extra_context)

    actions = ["delete_selected"]

    @admin.action(permissions=["delete"], description="Delete selected users")
    def delete_selected(self, request, queryset):
        """Django's bulk delete, but nothing at all when a superuser is among the users
        and the one asking is not a superuser."""
        if self._refuse_deleting_superusers(request, queryset.filter(is_superuser=True)):
            return None
        return admin_actions.delete_selected(self, request, queryset)

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "first_name", "last_name", "password1", "password2"),
            },
        ),
    )


@admin.register(Company)
class CompanyAdmin(AdjustBalanceAdminMixin, admin.ModelAdmin):
    list_display = ["name", "email", "members_can_use_credits", "created_at"]
    list_filter = ["members_can_use_credits"]
    search_fields = ["name", "email"]
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "members_can_use_credits" in form.changed_data:
            services.record_credits_visibility_change(obj, by=request.user)


@admin.register(CompanyMembership)
class CompanyMembershipAdmin(admin.ModelAdmin):
    list_display = ["company", "user", "role"]
    list_filter = ["role"]
    search_fields = ["company__name", "user__email", "user__first_name", "user__last_name"]
    autocomplete_fields = ["user", "company"]
