"""The credit ledger.

A customer (a user or a company) has one `CreditAccount`. Every addition creates a
`CreditLot`; every change of the balance appends a `CreditTransaction`; every deduction or
expiry records, in `CreditLotUsage`, how much it took from each lot. Transactions and
usages are never edited or deleted; a lot's `remaining` is the only value that changes,
and it always equals the lot's amount minus its usages.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from customers.models import Company


class TransactionKind(models.TextChoices):
    ADMIN_ALLOCATION = "admin_allocation", "Added by admin"
    ADMIN_CHARGE = "admin_charge", "Deducted by admin"
    EXPIRATION = "expiration", "Expired"
    # Reserved for plans, packages and bookings.
    SUBSCRIPTION_ALLOCATION = "subscription_allocation", "Added by plan"
    SUBSCRIPTION_EXPIRATION = "subscription_expiration", "Expired at plan renewal"
    PURCHASE_ALLOCATION = "purchase_allocation", "Purchased"
    BOOKING = "booking", "Booking"
    REFUND = "refund", "Refund"


# The kinds something in the app records today, and so the kinds the transactions pages
# offer as filters: a kind joins this list when a code path records it (the public API
# records purchases, plan allocations and bookings; the other reserved kinds are accepted
# by services.grant_credits and charge_credits, but nothing calls them with those yet).
RECORDED_KINDS = (
    TransactionKind.ADMIN_ALLOCATION,
    TransactionKind.ADMIN_CHARGE,
    TransactionKind.EXPIRATION,
    TransactionKind.PURCHASE_ALLOCATION,
    TransactionKind.SUBSCRIPTION_ALLOCATION,
    TransactionKind.BOOKING,
)


# Kinds that add credits (positive amount, create a lot) and kinds that take them away.
CREDIT_KINDS = frozenset(
    {
        TransactionKind.ADMIN_ALLOCATION,
        TransactionKind.SUBSCRIPTION_ALLOCATION,
        TransactionKind.PURCHASE_ALLOCATION,
        TransactionKind.REFUND,
    }
)
DEBIT_KINDS = frozenset(
    {
        TransactionKind.ADMIN_CHARGE,
        TransactionKind.EXPIRATION,
        TransactionKind.SUBSCRIPTION_EXPIRATION,
        TransactionKind.BOOKING,
    }
)

AMOUNT = {"max_digits": 12, "decimal_places": 2}


class CreditAccount(models.Model):
    """One per customer; its row is the lock every change of the customer's credits takes.

    `balance` is the ledger balance: the `balance_after` of the newest transaction. The
    balance a person sees is computed from the lots (see selectors.get_balance), so it is
    right also before the expiry sweep has written a due expiration.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_account",
    )
    company = models.OneToOneField(
        Company, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_account"
    )
    balance = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    last_seq = models.PositiveBigIntegerField(default=0)
    last_transaction_at = models.DateTimeField(
        null=True, blank=True, help_text="created_at of the newest transaction."
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(user__isnull=False, company__isnull=True)
                    | Q(user__isnull=True, company__isnull=False)
                ),
                name="account_one_owner",
            ),
            models.CheckConstraint(condition=Q(balance__gte=0), name="account_balance_gte_0"),
        ]

    def __str__(self):
        return str(self.customer)

    @property
    def customer(self):
        return self.user if self.user_id else self.company


class CreditTransaction(models.Model):
    """An immutable ledger row. For each account, in `seq` order:
    previous balance_after + amount = balance_after."""

    account = models.ForeignKey(
        CreditAccount,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,  # transaction_account_seq (account, seq) serves every lookup
    )
    seq = models.PositiveBigIntegerField(help_text="Position in the account's history, from 1.")
    kind = models.CharField(max_length=32, choices=TransactionKind.choices)
    amount = models.DecimalField(**AMOUNT, help_text="Signed: positive adds, negative takes.")
    balance_after = models.DecimalField(max_digits=14, decimal_places=2)
    memo = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The admin who made it; empty for the system.",
        db_index=False,  # transaction_actor, which leaves out the system's rows
    )
    created_at = models.DateTimeField()
    expires_on = models.DateField(null=True, blank=True, help_text="For additions: expiry date.")
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        ordering = ["-seq"]
        permissions = [("adjust_balance", "Can adjust customers' credit balances")]
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="transaction_account_seq"),
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="transaction_idempotency_key",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=sorted(CREDIT_KINDS), amount__gt=0)
                    | Q(kind__in=sorted(DEBIT_KINDS), amount__lt=0)
                ),
                name="transaction_amount_sign_by_kind",
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="transaction_balance_after_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(amount__gt=0),
                name="transaction_expiry_only_on_additions",
            ),
        ]
        indexes = [
            # Type filter on the transactions page, newest first.
            models.Index(fields=["account", "kind", "-seq"], name="transaction_account_kind"),
            # Date-range filter on the transactions page.
            models.Index(fields=["account", "created_at"], name="transaction_account_created"),
            # An admin's rows (and the check before deleting a user): most rows, from plans,
            # bookings and the sweep, have no actor, and skip this index.
            models.Index(
                fields=["actor"], condition=Q(actor__isnull=False), name="transaction_actor"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount:+} ({self.created_at:%Y-%m-%d})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Ledger transactions are append-only and cannot be edited.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Ledger transactions are append-only and cannot be deleted.")


class CreditLot(models.Model):
    """Credits added at one time, with one expiration (or none)."""

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="lots")
    allocation = models.OneToOneField(
        CreditTransaction,
        on_delete=models.PROTECT,
        related_name="lot",
        help_text="The transaction that added these credits.",
    )
    amount = models.DecimalField(**AMOUNT)
    remaining = models.DecimalField(**AMOUNT)
    expires_on = models.DateField(
        null=True, blank=True, help_text="Usable through the end of this day; empty: never."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = [F("expires_on").asc(nulls_last=True), "created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("amount")),
                name="lot_remaining_within_amount",
            ),
        ]
        indexes = [
            # Only lots that still hold credits: balance, breakdown, deduction order and the
            # expiry sweep read this index, whose size does not grow with history.
            models.Index(
                fields=["account", "expires_on", "created_at", "id"],
                condition=Q(remaining__gt=0),
                name="lot_open_by_expiry",
            ),
            models.Index(
                fields=["expires_on"], condition=Q(remaining__gt=0), name="lot_open_expiring"
            ),
        ]

    def __str__(self):
        when = f"expires {self.expires_on:%d %b %Y}" if self.expires_on else "never expires"
        return f"{self.remaining} of {self.amount} ({when})"


class CreditLotUsage(models.Model):
    """How much one deduction or expiry took from one lot."""

    transaction = models.ForeignKey(
        CreditTransaction,
        on_delete=models.PROTECT,
        related_name="usages",
        db_index=False,  # lot_usage_unique (transaction, lot) serves every lookup
    )
    lot = models.ForeignKey(CreditLot, on_delete=models.PROTECT, related_name="usages")
    amount = models.DecimalField(**AMOUNT)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_usage_amount_gt_0"),
            models.UniqueConstraint(fields=["transaction", "lot"], name="lot_usage_unique"),
        ]

    def __str__(self):
        return f"{self.amount} from lot {self.lot_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Lot usages are append-only and cannot be edited.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Lot usages are append-only and cannot be deleted.")
