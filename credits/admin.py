"""Ledger rows are read-only here; balances change only through the services, from the
"Adjust credit balance" page that the User and Company admins link to."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from . import policies, selectors, services
from .forms import AdjustBalanceForm, add_service_errors
from .models import (
    CreditAccount,
    CreditBatch,
    CreditHold,
    CreditHoldLot,
    CreditLot,
    CreditLotReturn,
    CreditLotUsage,
    CreditTransaction,
)

# Searching by the customer a row belongs to, through its account.
ACCOUNT_SEARCH = [
    "account__user__email",
    "account__user__first_name",
    "account__user__last_name",
    "account__company__name",
]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LotUsageInline(ReadOnlyInline):
    model = CreditLotUsage
    fk_name = "transaction"
    fields = ["lot", "amount"]
    readonly_fields = fields


class LotReturnInline(ReadOnlyInline):
    model = CreditLotReturn
    fk_name = "transaction"
    fields = ["lot", "amount", "grace_lot"]
    readonly_fields = fields


class HoldLotInline(ReadOnlyInline):
    model = CreditHoldLot
    fields = ["lot", "amount"]
    readonly_fields = fields


@admin.register(CreditTransaction)
class CreditTransactionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "amount", "balance_after", "actor", "memo"]
    list_filter = ["kind", "created_at"]
    search_fields = ["memo", *ACCOUNT_SEARCH]
    list_select_related = ["account__user", "account__company", "actor"]
    # Newest first by primary key: an index, however long the ledger (no date_hierarchy,
    # whose MIN/MAX and DISTINCT over every row grow with it).
    ordering = ["-id"]
    inlines = [LotUsageInline, LotReturnInline]
    show_full_result_count = False


@admin.register(CreditLot)
class CreditLotAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "amount", "remaining", "expires_on", "created_at"]
    list_filter = ["expires_on", "created_at"]
    search_fields = ["account__user__email", "account__company__name"]
    list_select_related = ["account__user", "account__company"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(CreditLotUsage)
class CreditLotUsageAdmin(ReadOnlyAdmin):
    list_display = ["id", "transaction", "lot", "amount", "customer"]
    list_filter = ["transaction__kind"]
    search_fields = [f"transaction__{field}" for field in ACCOUNT_SEARCH]
    list_select_related = ["transaction__account__user", "transaction__account__company", "lot"]
    ordering = ["-id"]
    show_full_result_count = False

    @admin.display(description="Customer")
    def customer(self, usage):
        return usage.transaction.account


@admin.register(CreditLotReturn)
class CreditLotReturnAdmin(ReadOnlyAdmin):
    list_display = ["id", "transaction", "lot", "amount", "grace_lot", "customer"]
    list_filter = ["transaction__kind", ("grace_lot", admin.EmptyFieldListFilter)]
    search_fields = [f"transaction__{field}" for field in ACCOUNT_SEARCH]
    list_select_related = [
        "transaction__account__user",
        "transaction__account__company",
        "lot",
        "grace_lot",
    ]
    ordering = ["-id"]
    show_full_result_count = False

    @admin.display(description="Customer")
    def customer(self, returned):
        return returned.transaction.account


@admin.register(CreditHold)
class CreditHoldAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "account",
        "amount",
        "status",
        "captured",
        "expires_at",
        "closed_at",
        "memo",
        "actor",
    ]
    list_filter = ["status", "expires_at", "created_at"]
    search_fields = ["memo", *ACCOUNT_SEARCH]
    list_select_related = ["account__user", "account__company", "actor"]
    ordering = ["-id"]
    inlines = [HoldLotInline]
    show_full_result_count = False


@admin.register(CreditHoldLot)
class CreditHoldLotAdmin(ReadOnlyAdmin):
    list_display = ["id", "hold", "lot", "amount", "customer"]
    list_filter = ["hold__status"]
    search_fields = [f"hold__{field}" for field in ACCOUNT_SEARCH]
    list_select_related = ["hold__account__user", "hold__account__company", "lot"]
    ordering = ["-id"]
    show_full_result_count = False

    @admin.display(description="Customer")
    def customer(self, held):
        return held.hold.account


@admin.register(CreditBatch)
class CreditBatchAdmin(ReadOnlyAdmin):
    """Grants to many, with their run's delivery state; a run whose last attempt failed
    can be run again (it adds only what is missing)."""

    list_display = [
        "created_at",
        "amount",
        "customers",
        "expires_on",
        "memo",
        "actor",
        "status",
        "run_status",
        "run_attempts",
        "finished_at",
    ]
    list_filter = ["status", "run_status", "created_at"]
    search_fields = ["memo", "idempotency_key", "actor__email"]
    list_select_related = ["actor"]
    ordering = ["-id"]
    actions = ["run_failed_again"]
    show_full_result_count = False

    @admin.display(description="Customers")
    def customers(self, batch):
        return batch.total

    def has_adjust_permission(self, request):
        return policies.can_adjust_balance(request.user)

    @admin.action(description="Run failed batches again", permissions=["adjust"])
    def run_failed_again(self, request, queryset):
        count = services.run_failed_batches_again(queryset.values_list("pk", flat=True))
        messages.success(request, f"{count} batch(es) queued to run again.")


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "company", "balance", "last_seq"]
    search_fields = ["user__email", "company__name"]
    list_select_related = ["user", "company"]


class AdjustBalanceAdminMixin:
    """Adds an "Adjust credit balance" page to a User or Company admin."""

    change_form_template = "admin/credits/change_form_with_adjust.html"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:object_id>/adjust-credits/",
                self.admin_site.admin_view(self.adjust_credits_view),
                name="{}_{}_adjust_credits".format(*info),
            )
        ] + super().get_urls()

    def adjust_credits_view(self, request, object_id):
        if not policies.can_adjust_balance(request.user):
            raise PermissionDenied
        customer = get_object_or_404(self.model, pk=object_id)
        change_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[customer.pk]
        )
        status = 200
        if request.method == "POST":
            form = AdjustBalanceForm(request.POST)
            if form.is_valid():
                try:
                    services.adjust_balance(customer, actor=request.user, **form.cleaned_data)
                except ValidationError as error:
                    add_service_errors(form, error)
                else:
                    messages.success(request, "The credit balance was adjusted.")
                    return redirect(change_url)
            status = 422
        else:
            form = AdjustBalanceForm.blank(expiry="")
        balances = selectors.get_balances(customer)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": customer,
            "title": f"Adjust credit balance: {customer}",
            "form": form,
            "balance": balances.balance,
            "breakdown": balances.breakdown,
            "change_url": change_url,
        }
        return TemplateResponse(
            request, "admin/credits/adjust_balance.html", context, status=status
        )
